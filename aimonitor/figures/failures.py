"""The failures of a range, grouped (SPEC.md §8): what is failing, since when and why.

The failures (status failed, timeout or circuit_open) of a scope created in a window,
grouped by (app_type, status, error signature), largest group first, then the one seen
last. One statement reads the groups, the newest message of each and their counts per
local hour (the sparkline): closed hours from the failure summaries, the rest raw
(``aimonitor.summaries.failures``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

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


@dataclass(frozen=True)
class HourBin:
    """Consecutive local hours of a window: the first, and how many."""

    start: dt.datetime
    hours: int


@dataclass(frozen=True)
class FailureGroups:
    """A window's failure groups; each group's ``counts`` are its failures in each of
    ``bins`` (the local hours the window touches, oldest first, one per bin unless the
    caller asked for fewer bins)."""

    bins: list[HourBin]
    groups: list[dict]


def hour_bins(window: TimeRange, most: int | None = None) -> list[HourBin]:
    """The window's hours, one per bin, or in at most ``most`` bins of equal length (but
    the last)."""
    hours = hour_starts(window)
    size = max(1, -(-len(hours) // most)) if most else 1
    return [
        HourBin(hour, len(hours[i : i + size])) for i, hour in enumerate(hours) if i % size == 0
    ]


def failure_groups(
    scope: Scope,
    window: TimeRange,
    app_type: str | None = None,
    statuses: list[str] | None = None,
    most_bins: int | None = None,
) -> FailureGroups:
    """The groups of the failures of ``scope`` created in ``window``, with their counts
    per hour (or in at most ``most_bins`` bins of hours: what a sparkline draws)."""
    bins = hour_bins(window, most_bins)
    rows = failures.groups(
        scope,
        (window.since, window.until),
        [b.start for b in bins],
        MAX_GROUPS,
        app_type=app_type,
        statuses=statuses,
    )
    groups = [
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
            "counts": counts,
        }
        for app, status, signature, count, pending, sites, first, last, sample, counts in rows
    ]
    return FailureGroups(bins, groups)
