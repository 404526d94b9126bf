"""The models, one module per concern; every model is importable from here.

- ``ai``: the AI service's tables (``RunLog``, ``TriggerJob``, ``CacheEntry``) and their
  scoped querysets (``visible_to(scope)``)
- ``access``: which sites a user may see (``SiteAccess``) and the sites' names
- ``audit``: the audit trail (``AuditEvent``)
- ``writes``: one-time keys, job retries and pending batches
- ``summaries``: the hourly rollups of ``ai_run_logs`` (calls, latency buckets, failure
  groups) and their state
- ``pricing``: prices per app type (``AppPrice``)
"""

from aimonitor.models.access import SiteAccess, SiteName, SiteNameQuerySet, site_label
from aimonitor.models.ai import (
    AI_MODELS,
    ALERT_STATUSES,
    CacheEntry,
    RunLog,
    RunLogQuerySet,
    SiteScopedQuerySet,
    TriggerJob,
    ai_table,
)
from aimonitor.models.audit import AuditEvent, AuditEventQuerySet
from aimonitor.models.pricing import AppPrice
from aimonitor.models.summaries import (
    FailureCall,
    FailurePendingHour,
    FailureRollup,
    RollupState,
    RunAppLatencyDay,
    RunAppLatencyRollup,
    RunLatencyRollup,
    RunRollup,
)
from aimonitor.models.writes import JobRetry, OnceToken, PendingBatch

__all__ = [
    "AI_MODELS",
    "ALERT_STATUSES",
    "AppPrice",
    "AuditEvent",
    "AuditEventQuerySet",
    "CacheEntry",
    "FailureCall",
    "FailurePendingHour",
    "FailureRollup",
    "JobRetry",
    "OnceToken",
    "PendingBatch",
    "RollupState",
    "RunAppLatencyDay",
    "RunAppLatencyRollup",
    "RunLatencyRollup",
    "RunLog",
    "RunLogQuerySet",
    "RunRollup",
    "SiteAccess",
    "SiteName",
    "SiteNameQuerySet",
    "SiteScopedQuerySet",
    "TriggerJob",
    "ai_table",
    "site_label",
]
