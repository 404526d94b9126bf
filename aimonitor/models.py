"""Models over the AI service's tables, and the console's own models.

``RunLog``, ``TriggerJob`` and ``CacheEntry`` map the three tables the AI
service owns (SPEC.md §2). They are ``managed = False``: ``migrate`` never
touches them; ``manage.py create_ai_tables`` applies the shipped DDL where they
are missing. Their ``db_table`` names the schema through Django's quoting
(``biz"."ai_run_logs`` renders as ``"biz"."ai_run_logs"``).

Every query of them starts from ``.objects.visible_to(user)``, the one
scoping point (``aimonitor.access``).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aimonitor.access import ALL_SITES, visible_site_ids
from aimonitor.deepjson import DeepJSONField
from aimonitor.localtime import local_day_bounds


def ai_table(name: str) -> str:
    return f'{settings.AI_SCHEMA}"."{name}'


ALERT_STATUSES = ("failed", "timeout", "circuit_open")


class SiteScopedQuerySet(models.QuerySet):
    def visible_to(self, user) -> SiteScopedQuerySet:
        """Only the rows of sites ``user`` may see (the one scoping point)."""
        site_ids = visible_site_ids(user)
        if site_ids is ALL_SITES:
            return self.all()
        if not site_ids:
            return self.none()
        return self.filter(site_id__in=site_ids)

    def for_site(self, site_id: int | None) -> SiteScopedQuerySet:
        """Narrow to one site (already checked by ``require_site``), or leave as is."""
        return self if site_id is None else self.filter(site_id=site_id)

    def on_local_day(self, day: dt.date) -> SiteScopedQuerySet:
        """Rows created on ``day`` in AIMONITOR_TIME_ZONE (index-friendly bounds)."""
        start, end = local_day_bounds(day)
        return self.filter(created_at__gte=start, created_at__lt=end)

    def between_local_days(
        self, date_from: dt.date | None, date_to: dt.date | None
    ) -> SiteScopedQuerySet:
        """Rows from the start of ``date_from`` to the end of ``date_to``, both inclusive."""
        qs = self
        if date_from is not None:
            qs = qs.filter(created_at__gte=local_day_bounds(date_from)[0])
        if date_to is not None:
            qs = qs.filter(created_at__lt=local_day_bounds(date_to)[1])
        return qs

    def newest_first(self) -> SiteScopedQuerySet:
        return self.order_by("-created_at", "-id")


class RunLogQuerySet(SiteScopedQuerySet):
    def alerts(self) -> RunLogQuerySet:
        """Calls that failed, timed out or hit an open circuit."""
        return self.filter(status__in=ALERT_STATUSES)

    def pending_alerts(self) -> RunLogQuerySet:
        """Alerts nobody has handled yet (alert_status NULL or 'pending')."""
        return self.alerts().filter(
            Q(alert_status__isnull=True) | Q(alert_status=RunLog.AlertStatus.PENDING)
        )

    def with_alert_status(self, alert_status: str) -> RunLogQuerySet:
        """Alerts in one triage state; 'pending' includes NULL, 'all' every alert."""
        if alert_status == "all":
            return self.alerts()
        if alert_status == RunLog.AlertStatus.PENDING:
            return self.pending_alerts()
        return self.alerts().filter(alert_status=alert_status)


class RunLog(models.Model):
    class Status(models.TextChoices):
        SUCCESS = "success", _("success")
        FAILED = "failed", _("failed")
        TIMEOUT = "timeout", _("timeout")
        CIRCUIT_OPEN = "circuit_open", _("circuit open")
        RUNNING = "running", _("running")

    class AlertStatus(models.TextChoices):
        PENDING = "pending", _("pending")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        IGNORED = "ignored", _("ignored")

    id = models.BigAutoField(primary_key=True)
    site_id = models.BigIntegerField(_("site"))
    app_type = models.CharField(_("app type"), max_length=64)
    trigger_type = models.CharField(_("trigger type"), max_length=32)
    member_id = models.BigIntegerField(_("member id"), null=True, blank=True)
    session_id = models.CharField(_("session id"), max_length=64, null=True, blank=True)
    request_prompt = models.TextField(_("prompt"), null=True, blank=True)
    response_text = models.TextField(_("response"), null=True, blank=True)
    tokens_used = models.IntegerField(_("tokens"), null=True, blank=True)
    latency_ms = models.IntegerField(_("latency (ms)"), null=True, blank=True)
    status = models.CharField(_("status"), max_length=32, choices=Status.choices)
    error_message = models.TextField(_("error"), null=True, blank=True)
    alert_status = models.CharField(
        _("alert status"), max_length=32, null=True, blank=True, choices=AlertStatus.choices
    )
    created_at = models.DateTimeField(_("created"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    objects = RunLogQuerySet.as_manager()

    class Meta:
        managed = False
        db_table = ai_table("ai_run_logs")
        verbose_name = _("run log")
        verbose_name_plural = _("run logs")
        permissions = [
            ("view_prompt", "Can see prompts and responses"),
            ("triage_alert", "Can acknowledge, ignore and reopen alerts"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.app_type} {self.status}"

    @property
    def is_alert(self) -> bool:
        return self.status in ALERT_STATUSES

    @property
    def effective_alert_status(self) -> str | None:
        """'pending' for an unhandled alert (NULL counts as pending), else its state."""
        if not self.is_alert:
            return None
        return self.alert_status or self.AlertStatus.PENDING


class TriggerJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RUNNING = "running", _("running")
        SUCCESS = "success", _("success")
        FAILED = "failed", _("failed")
        SKIPPED_DUPLICATE = "skipped_duplicate", _("skipped (duplicate)")

    id = models.BigAutoField(primary_key=True)
    site_id = models.BigIntegerField(_("site"))
    event_type = models.CharField(_("event type"), max_length=64)
    member_id = models.BigIntegerField(_("member id"), null=True, blank=True)
    connector_type = models.CharField(_("connector"), max_length=32, default="feiqiu")
    payload = DeepJSONField(_("payload"), null=True, blank=True)
    app_chain = models.TextField(_("app chain"), null=True, blank=True)
    is_forced = models.BooleanField(_("forced"), default=False)
    status = models.CharField(
        _("status"), max_length=32, choices=Status.choices, default=Status.PENDING
    )
    error_message = models.TextField(_("error"), null=True, blank=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        managed = False
        db_table = ai_table("ai_trigger_jobs")
        verbose_name = _("trigger job")
        verbose_name_plural = _("trigger jobs")
        permissions = [
            ("retry_job", "Can retry trigger jobs"),
            ("run_batch", "Can launch batch runs"),
        ]

    def __str__(self) -> str:
        return f"#{self.id} {self.event_type} {self.status}"

    @property
    def app_steps(self) -> list[str]:
        return [step.strip() for step in (self.app_chain or "").split(",") if step.strip()]


class CacheEntry(models.Model):
    class Status(models.TextChoices):
        VALID = "valid", _("valid")
        INVALIDATED = "invalidated", _("invalidated")

    id = models.BigAutoField(primary_key=True)
    site_id = models.BigIntegerField(_("site"))
    cache_type = models.CharField(_("cache type"), max_length=64)
    target_id = models.CharField(_("target id"), max_length=64)
    result_json = DeepJSONField(_("result"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=32, choices=Status.choices, default=Status.VALID
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)

    objects = SiteScopedQuerySet.as_manager()

    class Meta:
        managed = False
        db_table = ai_table("ai_cache")
        verbose_name = _("cache entry")
        verbose_name_plural = _("cache entries")
        permissions = [("invalidate_cache", "Can invalidate cached results")]

    def __str__(self) -> str:
        return f"#{self.id} {self.cache_type} {self.target_id}"


AI_MODELS = (RunLog, TriggerJob, CacheEntry)


# --- The console's own models ------------------------------------------------


class SiteAccess(models.Model):
    """Which sites a (non-superuser) user may see: a list of ids, or all."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_access"
    )
    all_sites = models.BooleanField(_("all sites"), default=False)
    site_ids = ArrayField(models.BigIntegerField(), blank=True, default=list)

    class Meta:
        verbose_name = _("site access")
        verbose_name_plural = _("site access")

    def __str__(self) -> str:
        if self.all_sites:
            return _("%(user)s: all sites") % {"user": self.user}
        sites = ", ".join(map(str, self.site_ids)) or _("no sites")
        return _("%(user)s: %(sites)s") % {"user": self.user, "sites": sites}


class SiteNameQuerySet(models.QuerySet):
    def labels(self, site_ids) -> dict[int, str]:
        """``{site_id: label}`` for the given ids; unnamed sites read "Site N"."""
        names = dict(self.filter(site_id__in=list(site_ids)).values_list("site_id", "name"))
        return {site_id: names.get(site_id) or site_label(site_id) for site_id in site_ids}


def site_label(site_id: int) -> str:
    return _("Site %(id)s") % {"id": site_id}


class SiteName(models.Model):
    site_id = models.BigIntegerField(_("site id"), primary_key=True)
    name = models.CharField(_("name"), max_length=100)

    objects = SiteNameQuerySet.as_manager()

    class Meta:
        ordering = ["site_id"]
        verbose_name = _("site name")
        verbose_name_plural = _("site names")

    def __str__(self) -> str:
        return f"{self.name} ({self.site_id})"


class AuditEventQuerySet(models.QuerySet):
    def record(
        self,
        *,
        actor,
        action: str,
        target_table: str,
        target_ids,
        site_id: int | None = None,
        details: dict | None = None,
    ) -> AuditEvent:
        """Write one audit event; call inside the write's own transaction."""
        return self.create(
            actor=actor if getattr(actor, "pk", None) else None,
            actor_username=getattr(actor, "username", "") or "",
            action=action,
            target_table=target_table,
            target_ids=sorted({int(i) for i in target_ids}),
            site_id=site_id,
            details=details or {},
        )

    def about(self, target_table: str, target_id: int) -> AuditEventQuerySet:
        """Events that touched one row, newest first."""
        return self.filter(target_table=target_table, target_ids__contains=[target_id]).order_by(
            "-created_at", "-id"
        )

    def latest_for(self, target_table: str, target_ids) -> dict[int, AuditEvent]:
        """``{row id: its newest event}`` for a page of rows, in one query."""
        ids = {int(i) for i in target_ids}
        if not ids:
            return {}
        events = self.filter(target_table=target_table, target_ids__overlap=list(ids)).order_by(
            "-created_at", "-id"
        )
        latest: dict[int, AuditEvent] = {}
        for event in events:
            for target_id in ids.intersection(event.target_ids):
                latest.setdefault(target_id, event)
            if len(latest) == len(ids):
                break
        return latest


class AuditEvent(models.Model):
    """One write the console made. Never edited or deleted through the console."""

    class Action(models.TextChoices):
        ACKNOWLEDGE = "acknowledge", _("acknowledged")
        IGNORE = "ignore", _("ignored")
        REOPEN = "reopen", _("reopened")
        RETRY = "retry", _("retried")
        INVALIDATE = "invalidate", _("invalidated")
        BATCH = "batch", _("batch run")
        ADMIN_ADD = "admin_add", _("added in the admin")
        ADMIN_CHANGE = "admin_change", _("changed in the admin")
        ADMIN_DELETE = "admin_delete", _("deleted in the admin")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # Kept beside the FK so the trail survives the user's deletion.
    actor_username = models.CharField(_("who"), max_length=150)
    action = models.CharField(_("action"), max_length=32, choices=Action.choices)
    target_table = models.CharField(_("table"), max_length=64)
    target_ids = ArrayField(models.BigIntegerField(), verbose_name=_("row ids"))
    site_id = models.BigIntegerField(_("site"), null=True, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    details = models.JSONField(_("details"), default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        indexes = [GinIndex(fields=["target_ids"], name="audit_target_ids_gin")]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.target_table} {self.target_ids}"


class OnceToken(models.Model):
    """A key that may be used once: the database guard against double submits.

    A write that must not happen twice (a retry form sent twice, a batch confirmed
    from two tabs or two server processes) claims its key in the same transaction
    as the write; the unique constraint lets exactly one transaction through.
    """

    key = models.CharField(max_length=100, unique=True)
    action = models.CharField(max_length=32)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("once token")
        verbose_name_plural = _("once tokens")

    def __str__(self) -> str:
        return f"{self.action} {self.key}"


class JobRetry(models.Model):
    """One retry of a trigger job: ``original_id`` was copied as ``copy_id``.

    Console-owned and written in the retry's own transaction (``operations/jobs.py``
    explains why this table rather than the audit trail answers "already retried").
    ``generation`` counts the retries of one original (1, 2, ...); the unique
    constraint on (original, generation) lets exactly one of two concurrent retries
    of the same state through.
    """

    original_id = models.BigIntegerField(_("original job"))
    generation = models.PositiveIntegerField(_("retry number"))
    # Set in the same transaction, right after the copy is inserted: never seen empty.
    copy_id = models.BigIntegerField(_("copy"), null=True, unique=True)
    site_id = models.BigIntegerField(_("site"))
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("job retry")
        verbose_name_plural = _("job retries")
        constraints = [
            models.UniqueConstraint(
                fields=["original_id", "generation"], name="job_retry_once_per_generation"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.original_id} → #{self.copy_id}"


# --- Rollups of ai_run_logs (console-owned; see aimonitor/rollup.py) ---------


class RunRollup(models.Model):
    """Calls of one local hour, site and app type, summed: what the dashboard's figures
    read for closed hours instead of the raw rows. Kept by ``aimonitor.rollup``."""

    hour = models.DateTimeField()  # the start of a local hour in AIMONITOR_TIME_ZONE
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    calls = models.BigIntegerField(default=0)
    successes = models.BigIntegerField(default=0)
    failures = models.BigIntegerField(default=0)  # status failed, timeout or circuit_open
    tokens = models.BigIntegerField(default=0)
    success_tokens = models.BigIntegerField(default=0)
    latency_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "app_type"], name="run_rollup_hour_site_app"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} {self.app_type}: {self.calls}"


class RunLatencyRollup(models.Model):
    """How many calls of one local hour and site had a latency in one bucket (buckets
    2 % wide), with the bucket's smallest and largest value: the p95 of closed hours."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    bucket = models.IntegerField()
    calls = models.BigIntegerField(default=0)
    min_ms = models.BigIntegerField()
    max_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "bucket"], name="run_latency_hour_site_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} bucket {self.bucket}"


class RunAppLatencyRollup(models.Model):
    """The latency buckets of ``RunLatencyRollup`` per app type too: each app's p95 over a
    range (the dashboard's apps table) from closed hours."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    bucket = models.IntegerField()
    calls = models.BigIntegerField(default=0)
    min_ms = models.IntegerField()
    max_ms = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "app_type", "bucket"],
                name="run_app_latency_hour_site_app_bucket",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} {self.app_type} bucket {self.bucket}"
        )


class RollupState(models.Model):
    """The one row saying what the rollups hold: every call created before
    ``covered_until`` whose id is at most ``max_id``. ``seen_id``/``seen_at`` is the
    newest id observed at the last refresh, adopted as ``max_id`` a minute later so
    that a slow transaction's row with a smaller id is not skipped."""

    covered_until = models.DateTimeField(null=True)
    max_id = models.BigIntegerField(default=0)
    seen_id = models.BigIntegerField(default=0)
    seen_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"rollups until {self.covered_until}, ids <= {self.max_id}"


# --- Prices (see aimonitor/pricing.py) ------------------------------------------


class AppPrice(models.Model):
    """What 1,000 tokens of one app type cost; apps without one use
    AIMONITOR_TOKEN_PRICE_PER_1K (SPEC.md §8)."""

    app_type = models.CharField(_("app type"), max_length=64, unique=True)
    price_per_1k = models.DecimalField(
        _("price per 1,000 tokens"),
        max_digits=12,
        decimal_places=6,
        validators=[MinValueValidator(0)],
    )

    class Meta:
        ordering = ["app_type"]
        verbose_name = _("app price")
        verbose_name_plural = _("app prices")

    def __str__(self) -> str:
        return f"{self.app_type}: {self.price_per_1k} / 1k"


# --- Batches estimated and not yet confirmed (see aimonitor/operations/batch.py) ------


class PendingBatch(models.Model):
    """A batch run that was estimated and waits for its confirm or cancel.

    One row per estimate, tied to the session that made it: estimates made at the same
    moment in one session (several tabs, parallel requests) never drop each other, as
    they did when all of them were one value in the session, written whole by each
    request. Confirming stays exactly-once through the batch's ``OnceToken``.
    """

    batch_id = models.CharField(max_length=32, primary_key=True)
    session_key = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    site_id = models.BigIntegerField()
    app_types = ArrayField(models.CharField(max_length=64))
    member_ids = ArrayField(models.BigIntegerField())
    duplicates = models.IntegerField(default=0)
    # Each app's mean tokens per call when estimated (the estimate's basis, kept as shown).
    tokens_per_call = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["session_key", "created_at"], name="pending_batch_session_idx")
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} (site {self.site_id})"


# --- Failure groups per hour (console-owned; see aimonitor/summaries/failures.py) ------


class FailureRollup(models.Model):
    """Failures of one local hour, site, app type, status and error signature (SPEC.md §8):
    how many, the first and last seen, and the id of the newest (its message is read by
    id). What ``/failures/`` reads for closed hours. Kept with the rollups."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    status = models.CharField(max_length=32)
    signature = models.CharField(max_length=200)
    group_hash = models.BigIntegerField()  # of (app_type, status, signature), as FailureCall's
    calls = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    newest_id = models.BigIntegerField()  # the call with the largest (created_at, id)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "app_type", "status", "signature"],
                name="failure_rollup_hour_group",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} {self.app_type} {self.status}"


class FailureCall(models.Model):
    """Each summed failure's group, as a hash of (app type, status, signature): the
    pending count of a group is then a join of the pending-alerts index with this
    table, rather than the signature computed again for every pending call."""

    created_at = models.DateTimeField()
    run_id = models.BigIntegerField()
    group_hash = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["created_at", "run_id"],
                include=["group_hash"],
                name="failure_call_created_run",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.run_id}: group {self.group_hash}"


class RunAppLatencyDay(models.Model):
    """``RunAppLatencyRollup``'s buckets summed per local day: a range's p95 (and each
    app's) over whole days reads one row per bucket and day, not 24 (aimonitor/summaries/
    latency.py)."""

    day = models.DateTimeField()  # the start of a local day in AIMONITOR_TIME_ZONE
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    bucket = models.IntegerField()
    calls = models.BigIntegerField(default=0)
    min_ms = models.IntegerField()
    max_ms = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "site_id", "app_type", "bucket"],
                name="run_app_latency_day_site_app_bucket",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} site {self.site_id} {self.app_type} bucket {self.bucket}"
