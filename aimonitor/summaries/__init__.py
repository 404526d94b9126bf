"""Console-owned summaries of the AI tables, kept with the hourly rollups."""
