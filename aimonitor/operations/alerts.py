"""Alert triage: acknowledge, ignore or reopen failed calls, one or many at a time.

``set_alert_status`` is the one write path for ``ai_run_logs.alert_status``: the
alerts page (row buttons and bulk), the dashboard's alert panel and the Django
admin action all call it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.humanize.templatetags.humanize import intcomma
from django.db import transaction
from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from aimonitor.models import AuditEvent, RunLog
from aimonitor.operations import BULK_LIMIT, RUN_LOGS_TABLE
from aimonitor.operations.refusals import Invalid, TooMany
from aimonitor.permissions import TRIAGE_ALERT, require
from aimonitor.scope import Scope

# action → the alert_status it sets
TARGET_STATUS = {
    AuditEvent.Action.ACKNOWLEDGE: RunLog.AlertStatus.ACKNOWLEDGED,
    AuditEvent.Action.IGNORE: RunLog.AlertStatus.IGNORED,
    AuditEvent.Action.REOPEN: RunLog.AlertStatus.PENDING,
}
TRIAGE_ACTIONS = tuple(str(action) for action in TARGET_STATUS)


@dataclass(frozen=True)
class TriageResult:
    action: str
    to_status: str
    changed: tuple[int, ...]  # ids whose alert_status this call changed
    unchanged: tuple[int, ...]  # ids already in the target state (no write, no audit)
    missing: tuple[int, ...]  # ids that are not alerts the user may see (untouched)
    events: tuple[AuditEvent, ...]

    def summary(self) -> list[str]:
        """What the action did, in words: changed, already in that state, left alone."""
        state = RunLog.AlertStatus(self.to_status).label
        lines = []
        if self.changed:
            lines.append(
                ngettext(
                    "%(count)s alert is now %(state)s.",
                    "%(count)s alerts are now %(state)s.",
                    len(self.changed),
                )
                % {"count": intcomma(len(self.changed)), "state": state}
            )
        if self.unchanged:
            lines.append(
                ngettext(
                    "%(count)s alert was already %(state)s; nothing changed for it.",
                    "%(count)s alerts were already %(state)s; nothing changed for them.",
                    len(self.unchanged),
                )
                % {"count": intcomma(len(self.unchanged)), "state": state}
            )
        if self.missing:
            lines.append(
                ngettext(
                    "%(count)s row is not an alert you can see; it was left alone.",
                    "%(count)s rows are not alerts you can see; they were left alone.",
                    len(self.missing),
                )
                % {"count": intcomma(len(self.missing))}
            )
        return lines


def _target_ids(targets: Iterable[int] | QuerySet) -> list[int]:
    if isinstance(targets, QuerySet):
        ids = list(targets.order_by().values_list("pk", flat=True)[: BULK_LIMIT + 1])
    else:
        ids = sorted({int(pk) for pk in targets})
    if len(ids) > BULK_LIMIT:
        raise TooMany(_("More than %(limit)s alerts selected.") % {"limit": BULK_LIMIT})
    return ids


def set_alert_status(user, targets: Iterable[int] | QuerySet, action: str) -> TriageResult:
    """Apply ``action`` (acknowledge / ignore / reopen) to the alerts among ``targets``.

    Only alerts (failed / timeout / circuit_open) of the user's sites are touched;
    other ids come back in ``missing``. Rows already in the target state are left
    alone and recorded nowhere. Each changed row's site gets one AuditEvent (so a
    bulk action over three sites writes three), in the same transaction as the write.
    The rows are locked first, so two people acting on one alert at once are
    serialised: both transitions happen in turn and both are audited.
    """
    require(user, TRIAGE_ALERT)
    if action not in TARGET_STATUS:
        raise Invalid(f"Unknown alert action {action!r}.")
    to_status = TARGET_STATUS[action]
    ids = _target_ids(targets)
    scoped = RunLog.objects.visible_to(Scope.for_user(user)).alerts()

    with transaction.atomic():
        # Locked in id order, so two bulk actions cannot deadlock each other.
        rows = list(
            scoped.filter(pk__in=ids)
            .select_for_update()
            .order_by("pk")
            .values_list("pk", "site_id", "alert_status")
        )
        changed_by_site: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(list))
        unchanged = []
        for pk, site_id, current in rows:
            from_status = current or RunLog.AlertStatus.PENDING
            if from_status == to_status:
                unchanged.append(pk)
            else:
                changed_by_site[site_id][from_status].append(pk)
        changed = sorted(
            pk for by_from in changed_by_site.values() for group in by_from.values() for pk in group
        )
        if changed:
            scoped.filter(pk__in=changed).update(alert_status=to_status)
        events = tuple(
            AuditEvent.objects.record(
                actor=user,
                action=action,
                target_table=RUN_LOGS_TABLE,
                target_ids=[pk for group in by_from.values() for pk in group],
                site_id=site_id,
                details=_transition(by_from, to_status),
            )
            for site_id, by_from in sorted(changed_by_site.items())
        )

    found = {pk for pk, _, _ in rows}
    return TriageResult(
        action=action,
        to_status=str(to_status),
        changed=tuple(changed),
        unchanged=tuple(unchanged),
        missing=tuple(pk for pk in ids if pk not in found),
        events=events,
    )


def _transition(by_from: dict[str, list[int]], to_status: str) -> dict:
    """``{"from": old, "to": new}``; rows that came from different states are listed by state."""
    if len(by_from) == 1:
        return {"from": str(next(iter(by_from))), "to": str(to_status)}
    return {
        "from": "mixed",
        "to": str(to_status),
        "from_ids": {str(state): sorted(ids) for state, ids in sorted(by_from.items())},
    }
