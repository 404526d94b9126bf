"""The incidents the notifier opened (SPEC.md §10), as a scope sees them.

An incident about a site is in the scopes that hold that site; an incident of an
every-site rule (no site) only in every-site scopes, since it sums sites others may
not see (``IncidentQuerySet.visible_to``).
"""

from __future__ import annotations

from aimonitor.scope import Scope
from alerts.models import Incident

PANEL_SIZE = 10


def incidents_for(scope: Scope):
    """The incidents of ``scope``, open first, with their rule and who acknowledged them."""
    return Incident.objects.visible_to(scope).select_related("rule", "acknowledged_by").open_first()


def open_incidents(scope: Scope) -> list[dict]:
    """The dashboard's panel and JSON: the newest open incidents in scope, as plain data."""
    rows = incidents_for(scope).open()[:PANEL_SIZE]
    return [
        {
            "id": incident.pk,
            "rule": incident.rule.name,
            "kind": incident.rule.kind,
            "site_id": incident.site_id,
            "app_type": incident.app_type,
            "value": incident.last_value,
            "threshold": incident.threshold,
            "window_minutes": incident.window_minutes,
            "started_at": incident.started_at,
            "acknowledged": incident.acknowledged_at is not None,
        }
        for incident in rows
    ]
