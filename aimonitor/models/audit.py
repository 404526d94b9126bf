"""The audit trail: one ``AuditEvent`` per write the console makes."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


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
