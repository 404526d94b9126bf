"""Local days in AIMONITOR_TIME_ZONE (SPEC.md §3).

"Today" is the calendar day in the console's zone, whatever the server's or the
database session's zone. Days become aware datetime bounds compared with
``created_at``, so the indexes on it are used.
"""

from __future__ import annotations

import datetime as dt

from django.utils import timezone


def local_today() -> dt.date:
    return timezone.localdate()


def local_day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of ``day`` as aware datetimes in the console's zone."""
    zone = timezone.get_default_timezone()
    start = dt.datetime.combine(day, dt.time.min, tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min, tzinfo=zone)
    return start, end


def local_month_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) of the calendar month containing ``day``."""
    first = day.replace(day=1)
    next_first = (first + dt.timedelta(days=32)).replace(day=1)
    return local_day_bounds(first)[0], local_day_bounds(next_first)[0]
