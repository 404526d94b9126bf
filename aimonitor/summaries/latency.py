"""Latency buckets per local day: a long range's p95 without reading every hour.

A range's p95 (the dashboard's ``range`` and each app's in ``apps``) is read from
2 %-wide latency buckets. Per hour, site and app there are up to a few hundred: 7 days
of them are about half a million rows at ten million calls. ``RunAppLatencyDay`` holds
the same buckets per local day, summed by the rollups' refresh from the same calls as
the hours (so a day's row is always the sum of its hours' rows, the current day's those
of its closed hours), and a window's closed hours are read as: its whole local days from
the days, the hours before the first and after the last whole day from the hours —
unless the window's closed hours end where the rollups stop (a range up to now): its
last day is then read from its day row (``aimonitor.summaries.reading``).
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from aimonitor.models import RunAppLatencyDay
from aimonitor.summaries.keeping import quoted_table

REFRESH_SQL = """
app_latency_days AS (
    INSERT INTO {days} AS l (day, site_id, app_type, bucket, calls, min_ms, max_ms)
    SELECT date_trunc('day', created_at, %(zone)s), site_id, app_type, {bucket}, count(*),
           min(latency_ms), max(latency_ms)
    FROM fresh WHERE latency_ms IS NOT NULL GROUP BY 1, 2, 3, 4
    ON CONFLICT (day, site_id, app_type, bucket) DO UPDATE SET
        calls = l.calls + excluded.calls,
        min_ms = least(l.min_ms, excluded.min_ms),
        max_ms = greatest(l.max_ms, excluded.max_ms)
),"""

# The closed hours [a, b) of a window: hours outside [d1, d2) from the hourly table,
# whole days in [d1, d2) from the daily one. {key} is the key column or parameter.
ROLLUP_PART = """SELECT k, bucket, sum(calls), min(min_ms), max(max_ms)
FROM (SELECT {key} AS k, bucket, calls, min_ms, max_ms FROM {hours}
      WHERE ((hour >= %(a)s AND hour < %(d1)s) OR (hour >= %(d2)s AND hour < %(b)s)) {site}
      UNION ALL
      SELECT {key}, bucket, calls, min_ms, max_ms FROM {days}
      WHERE day >= %(d1)s AND day < %(d2)s {site}) summed
GROUP BY 1, 2"""


def refresh_ctes(bucket: str) -> str:
    """The CTE the rollups' refresh statement runs over its ``fresh`` calls."""
    return REFRESH_SQL.format(days=quoted_table(RunAppLatencyDay), bucket=bucket)


def rollup_part(key: str, hours: str, site: str) -> str:
    """The rollup part of a window's latency buckets, reading whole days from the days."""
    return ROLLUP_PART.format(key=key, hours=hours, days=quoted_table(RunAppLatencyDay), site=site)


def whole_days(
    a: dt.datetime, b: dt.datetime, covered: dt.datetime | None = None
) -> dict[str, dt.datetime]:
    """``{"d1", "d2"}``: the local days to read from the days within [a, b) (d1 == d2 == b
    if none): the whole ones, and the last one too when ``b`` is where the rollups stop
    (``covered``): its day row then holds exactly its hours before ``b``."""
    first = timezone.localtime(a).replace(hour=0, minute=0, second=0, microsecond=0)
    if first < a:
        first = _next_midnight(first)
    last = timezone.localtime(b).replace(hour=0, minute=0, second=0, microsecond=0)
    if b == covered and last < b:
        last = _next_midnight(last)
    if first >= last:
        return {"d1": b, "d2": b}
    return {"d1": first, "d2": last}


def _next_midnight(midnight: dt.datetime) -> dt.datetime:
    day = timezone.localtime(midnight).date() + dt.timedelta(days=1)
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def forget() -> None:
    RunAppLatencyDay.objects.all().delete()
