"""Domain operations: every write the console makes, each checking permission and
scope, writing, and recording its AuditEvent in one transaction.

Invariant: an operation refuses only by raising a ``refusals.Refused`` (its message
and HTTP status), never by returning a status or redirecting; every view answers a
``Refused`` the same way (``aimonitor.responses``). The names an operation records
in the audit trail and the most rows one request may change are defined here, once.
"""

# ``AuditEvent.target_table`` of each table the console writes (the plain name, without
# the schema an ``AIMONITOR_AI_SCHEMA`` may put before the AI tables' own names).
RUN_LOGS_TABLE = "ai_run_logs"
JOBS_TABLE = "ai_trigger_jobs"
CACHE_TABLE = "ai_cache"
INCIDENTS_TABLE = "alerts_incident"

# The most rows one bulk action (alerts, jobs) may change: beyond it, refused whole.
BULK_LIMIT = 1000
