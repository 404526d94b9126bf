"""Models over the AI service's tables (SPEC.md §2) and their querysets.

``RunLog``, ``TriggerJob`` and ``CacheEntry`` map the three tables the AI
service owns. They are ``managed = False``: ``migrate`` never touches them;
``manage.py create_ai_tables`` applies the shipped DDL where they are missing.
Their ``db_table`` names the schema through Django's quoting
(``biz"."ai_run_logs`` renders as ``"biz"."ai_run_logs"``).

Every query of them starts from ``.objects.visible_to(scope)``, the one scoping
point: ``scope`` is an ``aimonitor.scope.Scope`` (``Scope.for_user(user)``).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aimonitor.deepjson import DeepJSONField
from aimonitor.localtime import local_day_bounds

if TYPE_CHECKING:
    from aimonitor.scope import Scope


def ai_table(name: str) -> str:
    return f'{settings.AI_SCHEMA}"."{name}'


ALERT_STATUSES = ("failed", "timeout", "circuit_open")


class SiteScopedQuerySet(models.QuerySet):
    def visible_to(self, scope: Scope) -> SiteScopedQuerySet:
        """Only the rows of the sites in ``scope`` (the one scoping point)."""
        if not hasattr(scope, "is_all_sites"):
            raise TypeError(
                f"visible_to() takes a Scope (Scope.for_user(user)), not {type(scope).__name__}"
            )
        if scope.is_all_sites:
            return self.all()
        if not scope.site_ids:
            return self.none()
        return self.filter(site_id__in=scope.site_ids)

    def for_site(self, site_id: int | None) -> SiteScopedQuerySet:
        """Narrow to one site (already checked by ``Scope.require``), or leave as is."""
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
