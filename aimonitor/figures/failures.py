"""The failures of a range, grouped (SPEC.md §8): what is failing, since when and why.

The failures (status failed, timeout or circuit_open) of a scope created in a window,
grouped by (app_type, status, error signature), largest group first, then the one seen
last. One statement (``failure_groups.sql``) reads the groups, the newest message of each
and their counts per local hour (the sparkline).
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.utils import timezone

from aimonitor.db_router import reading
from aimonitor.models import ALERT_STATUSES, RunLog
from aimonitor.scope import Scope
from aimonitor.signature import signature_sql
from aimonitor.sqlfiles import sql_beside
from aimonitor.timerange import TimeRange

# A page of groups: more distinct failures than this are narrowed by a filter.
MAX_GROUPS = 200
HOUR = dt.timedelta(hours=1)

GROUPS_SQL = sql_beside(__file__, "failure_groups.sql")


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
    where, params = (
        [],
        {
            "statuses": list(statuses or ALERT_STATUSES),
            "since": window.since,
            "until": window.until,
            "zone": str(settings.TIME_ZONE),
            "limit": MAX_GROUPS,
        },
    )
    if not scope.is_all_sites:
        where.append("AND site_id = ANY(%(sites)s)")
        params["sites"] = scope.site_id_list
    if app_type:
        where.append("AND app_type = %(app_type)s")
        params["app_type"] = app_type
    connection = reading(RunLog)  # the replica when there is one (aimonitor/db_router.py)
    sql = GROUPS_SQL.format(
        signature=signature_sql("error_message"),
        runs=connection.ops.quote_name(RunLog._meta.db_table),
        scope=" ".join(where),
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
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
