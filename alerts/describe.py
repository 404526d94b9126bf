"""An alerts filter in words, for the bulk confirmation (SPEC.md §8).

"pending timeouts of app3_clue at Site 2 in the last 24h (since 2026-11-28 14:00)":
what a bulk action over "every alert matching the filter" will change, so the
person confirming reads the filter instead of decoding a query string.
"""

from __future__ import annotations

from django.utils import timezone
from django.utils.translation import gettext as _

from aimonitor.models import RunLog, site_label

# What alerts of one call status are called, as a plural noun.
KINDS = {
    "failed": lambda: _("failures"),
    "timeout": lambda: _("timeouts"),
    "circuit_open": lambda: _("circuit-open calls"),
}


def local_minute(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M")


def describe_filter(form, site_labels: dict | None = None) -> str:
    """The alerts a valid ``AlertFilterForm`` selects, as one phrase."""
    data = form.cleaned_data
    statuses = data.get("status") or []
    if len(statuses) == 1:
        kind = KINDS[statuses[0]]()
    elif statuses:
        kind = _("alerts with status %(statuses)s") % {"statuses": ", ".join(statuses)}
    else:
        kind = _("alerts")
    state = data.get("alert_status") or RunLog.AlertStatus.PENDING
    if state == "all":
        parts = [_("all %(kind)s") % {"kind": kind}]
    else:
        label = RunLog.AlertStatus(state).label
        parts = [_("%(state)s %(kind)s") % {"state": label, "kind": kind}]
    if data.get("app_type"):
        parts.append(_("of %(app)s") % {"app": data["app_type"]})
    if data.get("site") is not None:
        site = (site_labels or {}).get(data["site"]) or site_label(data["site"])
        parts.append(_("at %(site)s") % {"site": site})
    if data.get("member_id") is not None:
        parts.append(_("for member %(member)s") % {"member": data["member_id"]})
    if "error" in form.data:
        error = data.get("error") or ""
        if error:
            parts.append(_("whose error reads “%(error)s”") % {"error": error})
        else:
            parts.append(_("without an error message"))
    window = data.get("time_range")
    if window is not None and window.preset:
        parts.append(
            _("in the last %(range)s (since %(since)s)")
            % {"range": window.preset, "since": local_minute(window.since)}
        )
    elif window is not None:
        parts.append(
            _("from %(since)s to %(until)s")
            % {"since": local_minute(window.since), "until": local_minute(window.until)}
        )
    if data.get("date_from"):
        parts.append(_("from day %(day)s") % {"day": data["date_from"].isoformat()})
    if data.get("date_to"):
        parts.append(_("to day %(day)s") % {"day": data["date_to"].isoformat()})
    return " ".join(str(part) for part in parts)
