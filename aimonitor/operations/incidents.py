"""Acknowledging an incident (SPEC.md §10): someone is on it, so its reminders stop.

The one write path for ``Incident.acknowledged_by/at``: the incidents page and the
dashboard's panel call it. Operators and admins (``triage_alert``) may acknowledge an
incident they can see; acknowledging one already acknowledged changes nothing.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aimonitor.models import AuditEvent
from aimonitor.operations import INCIDENTS_TABLE
from aimonitor.operations.refusals import NotFound
from aimonitor.permissions import TRIAGE_ALERT, require
from aimonitor.scope import Scope
from alerts.models import Incident


def acknowledge_incident(user, pk: int) -> tuple[Incident, bool]:
    """``(incident, changed)``; 403 without the permission, 404 outside the user's scope."""
    require(user, TRIAGE_ALERT)
    with transaction.atomic():
        incident = (
            Incident.objects.visible_to(Scope.for_user(user))
            .select_for_update()
            .filter(pk=pk)
            .first()
        )
        if incident is None:
            raise NotFound(_("No such incident."))
        if incident.acknowledged_at is not None:
            return incident, False
        incident.acknowledged_by = user
        incident.acknowledged_at = timezone.now()
        incident.save(update_fields=["acknowledged_by", "acknowledged_at"])
        AuditEvent.objects.record(
            actor=user,
            action=AuditEvent.Action.ACKNOWLEDGE,
            target_table=INCIDENTS_TABLE,
            target_ids=[incident.pk],
            site_id=incident.site_id,
            details={"rule": incident.rule.name, "key": incident.key},
        )
    return incident, True
