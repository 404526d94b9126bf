"""The failures of a range, grouped (SPEC.md §8): what is failing, since when and why.

The failures (status failed, timeout or circuit_open) of a scope created in a window,
grouped by (app_type, status, error signature), largest group first, then the one seen
last. One statement reads the groups, the newest message of each and their counts per
local hour (the sparkline): closed hours from the failure summaries, the rest raw
(``aimonitor.summaries.failures``).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from aimonitor.scope import Scope
from aimonitor.summaries import failures
from aimonitor.timerange import TimeRange

# A page of groups: more distinct failures than this are narrowed by a filter.
MAX_GROUPS = 200
HOUR = dt.timedelta(hours=1)


def hour_starts(window: TimeRange) -> list[dt.datetime]:
    """The local hours the window touches, oldest first (the sparkline's slots)."""
    hour = timezone.localtime(window.since).replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < window.until:
        hours.append(hour)
        # Across a DST change the next local hour is found from UTC, not by adding wall time.
        hour = timezone.localtime(hour + HOUR).replace(minute=0, second=0, microsecond=0)
    return hours


def failure_groups(
    scope: Scope,
    window: TimeRange,
    app_type: str | None = None,
    statuses: list[str] | None = None,
) -> list[dict]:
    """The groups of the failures of ``scope`` created in ``window``."""
    rows = failures.groups(
        scope, (window.since, window.until), MAX_GROUPS, app_type=app_type, statuses=statuses
    )
    slots = hour_starts(window)
    groups = []
    for row in rows:
        app, status, signature, count, pending, sites, first, last, sample, hours, counts = row
        per_hour = dict(zip(hours, counts, strict=True))
        groups.append(
            {
                "app_type": app,
                "status": status,
                "signature": signature,
                "count": count,
                "pending": pending,
                "sites": list(sites),
                "first_seen": first,
                "last_seen": last,
                "sample_error": sample,
                "hourly": [{"hour": hour, "count": per_hour.get(hour, 0)} for hour in slots],
            }
        )
    return groups
