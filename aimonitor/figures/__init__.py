"""The figures: plain functions that count what a ``Scope`` may see and return plain data.

Below the operations and the pages (pages and operations import figures, never the
reverse), above the summaries and the models:

- ``calls``: the dashboard's panels (today, the trend, the distribution, app health, the
  budget, recent alerts, the chosen range) from the summaries and the raw calls
- ``queue``: the queue's health (jobs by status, stuck, finished per minute, failures)
- ``failures``: a range's failures grouped by error signature
- ``incidents``: the notifier's incidents in scope

Long statements live in ``.sql`` files beside them (``aimonitor.sqlfiles``).
"""
