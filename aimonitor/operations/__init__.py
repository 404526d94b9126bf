"""Domain operations: every write the console makes, each checking permission and
scope, writing, and recording its AuditEvent in one transaction."""
