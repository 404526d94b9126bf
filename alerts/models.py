"""Notification rules, the channels they notify, the incidents they open, the deliveries.

Invariants: at most one open incident per (rule, key) — a partial unique constraint;
at most one delivery per (incident, channel, event, sequence) — so however many
workers run a pass at once, each event is queued for each channel exactly once, and
every attempt to send it is recorded on that one row (SPEC.md §10).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator, URLValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aimonitor.models import SiteScopedQuerySet

# The longest window a rule may look back over: one day of calls, read exactly.
MAX_WINDOW_MINUTES = 1440


class Channel(models.Model):
    class Kind(models.TextChoices):
        WEBHOOK = "webhook", _("webhook")
        WECOM = "wecom", _("WeCom robot")
        DINGTALK = "dingtalk", _("DingTalk robot")
        FEISHU = "feishu", _("Feishu bot")
        SLACK = "slack", _("Slack incoming webhook")
        EMAIL = "email", _("email")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    url = models.CharField(
        _("URL"),
        max_length=500,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text=_("The robot's or receiver's address (every kind but email)."),
    )
    secret = models.CharField(
        _("secret"),
        max_length=200,
        blank=True,
        help_text=_("DingTalk/Feishu signing secret, or the webhook's HMAC key."),
    )
    recipients = models.TextField(
        _("recipients"), blank=True, help_text=_("Email addresses, separated by commas.")
    )
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("channel")
        verbose_name_plural = _("channels")

    def __str__(self) -> str:
        return f"{self.name} ({self.get_kind_display()})"

    @property
    def recipient_list(self) -> list[str]:
        return [address.strip() for address in self.recipients.split(",") if address.strip()]

    def clean(self) -> None:
        errors = {}
        if self.kind == self.Kind.EMAIL:
            if not self.recipient_list:
                errors["recipients"] = _("An email channel needs at least one recipient.")
            else:
                from django.core.validators import validate_email

                for address in self.recipient_list:
                    try:
                        validate_email(address)
                    except ValidationError:
                        errors["recipients"] = _("%(address)s is not an email address.") % {
                            "address": address
                        }
                        break
        elif not self.url:
            errors["url"] = _("This kind of channel needs an http(s) URL.")
        if errors:
            raise ValidationError(errors)


class AlertRule(models.Model):
    class Kind(models.TextChoices):
        FAILURE_RATE = "failure_rate", _("failure rate")
        FAILURE_COUNT = "failure_count", _("failure count")
        LATENCY_P95 = "latency_p95", _("p95 latency")
        SILENCE = "silence", _("silence")
        BUDGET = "budget", _("daily budget")
        STUCK_JOBS = "stuck_jobs", _("stuck jobs")

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    site_id = models.BigIntegerField(
        _("site"), null=True, blank=True, help_text=_("Empty: every site together.")
    )
    app_type = models.CharField(
        _("app type"), max_length=64, blank=True, help_text=_("Empty: each app type on its own.")
    )
    window_minutes = models.IntegerField(
        _("window (minutes)"),
        default=15,
        validators=[MinValueValidator(1), MaxValueValidator(MAX_WINDOW_MINUTES)],
    )
    threshold = models.FloatField(_("threshold"))
    min_calls = models.IntegerField(
        _("minimum calls"), default=10, validators=[MinValueValidator(0)]
    )
    repeat_minutes = models.IntegerField(
        _("reminder every (minutes)"),
        default=60,
        validators=[MinValueValidator(0)],
        help_text=_("0: no reminders."),
    )
    channels = models.ManyToManyField(Channel, blank=True, verbose_name=_("channels"))
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("alert rule")
        verbose_name_plural = _("alert rules")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors = {}
        threshold = self.threshold
        if threshold is not None:
            if self.kind == self.Kind.FAILURE_RATE and not 0 < threshold <= 1:
                errors["threshold"] = _(
                    "A failure rate is a fraction: the threshold must be above 0 and at most 1."
                )
            elif self.kind == self.Kind.BUDGET and threshold <= 0:
                errors["threshold"] = _(
                    "The budget threshold is a fraction of the daily limit above 0 (0.8 = 80 %)."
                )
            elif self.kind in (self.Kind.FAILURE_COUNT, self.Kind.STUCK_JOBS) and threshold < 1:
                errors["threshold"] = _("The threshold is a count: at least 1.")
            elif self.kind == self.Kind.LATENCY_P95 and threshold <= 0:
                errors["threshold"] = _("The latency threshold is in milliseconds, above 0.")
            elif threshold < 0:
                errors["threshold"] = _("The threshold cannot be negative.")
        if self.kind == self.Kind.SILENCE and not self.app_type:
            errors["app_type"] = _("A silence rule watches one app type: name it.")
        if self.kind == self.Kind.BUDGET and (self.site_id is not None or self.app_type):
            errors["site_id"] = _("The budget is global: leave site and app type empty.")
        if self.kind == self.Kind.STUCK_JOBS and self.app_type:
            errors["app_type"] = _("Stuck jobs are counted per site, not per app type.")
        if self.window_minutes is not None and self.window_minutes < 1:
            errors["window_minutes"] = _("The window must be at least one minute.")
        if errors:
            raise ValidationError(errors)


class IncidentQuerySet(SiteScopedQuerySet):
    """``visible_to`` is the one scoping point's: incidents about the user's sites, and
    every-site incidents (``site_id`` NULL) for every-site users only."""

    def open(self) -> IncidentQuerySet:
        return self.filter(resolved_at__isnull=True)

    def open_first(self) -> IncidentQuerySet:
        return self.order_by(models.F("resolved_at").desc(nulls_first=True), "-started_at", "-id")


class Incident(models.Model):
    rule = models.ForeignKey(
        AlertRule, on_delete=models.CASCADE, related_name="incidents", verbose_name=_("rule")
    )
    # What the incident is about within its rule: "site=1;app=app1_chat", "site=*;app=*".
    key = models.CharField(_("key"), max_length=200)
    site_id = models.BigIntegerField(_("site"), null=True, blank=True)
    app_type = models.CharField(_("app type"), max_length=64, blank=True)
    started_at = models.DateTimeField(_("since"), default=timezone.now)
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    last_value = models.FloatField(_("last value"))
    threshold = models.FloatField(_("threshold"))
    window_minutes = models.IntegerField(_("window (minutes)"))
    last_evaluated_at = models.DateTimeField(default=timezone.now)
    # Reminders queued so far: the n-th is due repeat_minutes × n after started_at.
    reminders = models.IntegerField(default=0)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("acknowledged by"),
    )
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)

    objects = IncidentQuerySet.as_manager()

    class Meta:
        verbose_name = _("incident")
        verbose_name_plural = _("incidents")
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "key"],
                condition=Q(resolved_at__isnull=True),
                name="incident_one_open_per_rule_key",
            )
        ]
        indexes = [models.Index(fields=["resolved_at", "started_at"], name="incident_open_idx")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.rule} {self.key}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

    def reminder_due(self, now: dt.datetime) -> int:
        """The sequence number of the reminder due at ``now`` (0: none due)."""
        repeat = self.rule.repeat_minutes
        if not repeat or self.acknowledged_at or not self.is_open:
            return 0
        due = int((now - self.started_at) / dt.timedelta(minutes=repeat))
        return due if due > self.reminders else 0


class Delivery(models.Model):
    class Event(models.TextChoices):
        FIRING = "firing", _("firing")
        REMINDER = "reminder", _("reminder")
        RESOLVED = "resolved", _("resolved")

    class Status(models.TextChoices):
        PENDING = "pending", _("pending")
        RETRYING = "retrying", _("retrying")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")

    incident = models.ForeignKey(
        Incident, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("incident")
    )
    channel = models.ForeignKey(
        Channel, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("channel")
    )
    event = models.CharField(_("event"), max_length=16, choices=Event.choices)
    # 0 for firing and resolved; n for the n-th reminder.
    sequence = models.IntegerField(default=0)
    created_at = models.DateTimeField(_("queued"), default=timezone.now)
    status = models.CharField(
        _("outcome"), max_length=16, choices=Status.choices, default=Status.PENDING
    )
    attempts = models.IntegerField(_("attempts"), default=0)
    http_status = models.IntegerField(_("HTTP status"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    # Every attempt: [{"at", "http_status", "error"}], oldest first.
    log = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("delivery")
        verbose_name_plural = _("deliveries")
        constraints = [
            models.UniqueConstraint(
                fields=["incident", "channel", "event", "sequence"],
                name="delivery_once_per_event",
            )
        ]

    def __str__(self) -> str:
        return f"{self.event} of incident #{self.incident_id} to {self.channel}"
