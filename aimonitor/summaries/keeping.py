"""Keeping the rollups: sum the hours that closed and the late calls, in one statement
(``refresh.sql``), bounded per request; see the package's docstring for the invariant.

Hours are closed ``GRACE`` after they end (a call's row may still be updated, e.g. from
``running``, just after its hour); an observed id is adopted ``LAG_SECONDS`` later, so a
row whose id was taken by a transaction still open at the refresh is not skipped.
"""

from __future__ import annotations

import datetime as dt
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from aimonitor.models import (
    ALERT_STATUSES,
    RollupState,
    RunAppLatencyRollup,
    RunLatencyRollup,
    RunLog,
    RunRollup,
)
from aimonitor.sqlfiles import sql_beside

logger = logging.getLogger(__name__)

# An hour is summed once it ended this long ago (rows may still be updated just after).
GRACE = dt.timedelta(minutes=5)
# An observed id is adopted this many seconds later (transactions open longer are rare).
LAG_SECONDS = 60
# Latency buckets: bucket b >= 0 holds [1.02^b - 1, 1.02^(b+1) - 1) ms; bucket -1 - b
# the negative latencies (clock skew) of the same magnitude.
BUCKET_RATIO = 1.02
HOUR = dt.timedelta(hours=1)
# The most one request's refresh sums: hours closed, and ids adopted.
STEP_HOURS = 6
STEP_IDS = 200_000


def quoted_table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


FAILED = "status IN ({})".format(", ".join(f"'{status}'" for status in ALERT_STATUSES))


def bucket_sql(column: str) -> str:
    """The latency bucket of ``column``; negative latencies (clock skew) mirror the positive
    ones below bucket 0, so a percentile among them is as close as among the others.

    In float8: ``2147483647 + 1`` (the largest integer, which the contract allows) would
    overflow integer arithmetic.
    """
    magnitude = f"floor(ln(abs({column}::float8) + 1) / ln({BUCKET_RATIO}))::int"
    return f"CASE WHEN {column} < 0 THEN -1 - {magnitude} ELSE {magnitude} END"


@dataclass(frozen=True)
class State:
    covered_until: dt.datetime | None  # None: nothing summed yet
    max_id: int


NOTHING = State(None, 0)
# Set by refreshed(): the state a block of figures reads with (one refresh, not one each).
REFRESHED: ContextVar[State | None] = ContextVar("rollup_state", default=None)

# The one statement of a refresh (placeholders: the tables, the bucket and failure tests).
REFRESH_SQL = sql_beside(__file__, "refresh.sql")


def closing_point(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the local hour that contains ``now - GRACE``: hours before it are closed."""
    return local_hour_floor((now or timezone.now()) - GRACE)


def local_hour_floor(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)


def refresh(
    now: dt.datetime | None = None, lag: int | None = None, unbounded: bool = False
) -> State:
    """Sum the hours that closed and the late calls; the state the figures read with.

    ``lag``: seconds before an observed id is adopted (default ROLLUP_LAG_SECONDS or
    60); 0 adopts the newest id at once. A request's refresh does a bounded step
    (STEP_HOURS of hours, STEP_IDS of ids); ``unbounded`` catches up at once (the
    command line).
    """
    from aimonitor.summaries import failures, latency  # they read through this package

    sql = REFRESH_SQL.format(
        summary_ctes=failures.refresh_ctes() + latency.refresh_ctes(bucket_sql("latency_ms")),
        state=quoted_table(RollupState),
        runs=quoted_table(RunLog),
        rollup=quoted_table(RunRollup),
        latency=quoted_table(RunLatencyRollup),
        app_latency=quoted_table(RunAppLatencyRollup),
        bucket=bucket_sql("latency_ms"),
        failed=FAILED,
    )
    params = {
        "until": closing_point(now),
        "lag": getattr(settings, "ROLLUP_LAG_SECONDS", LAG_SECONDS) if lag is None else lag,
        "step_hours": None if unbounded else STEP_HOURS,
        "step_ids": None if unbounded else STEP_IDS,
        "zone": str(settings.TIME_ZONE),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return NOTHING
    until, max_id, shrunk = row
    if shrunk:
        # Calls were removed (the table was emptied or recreated): start again.
        rebuild()
        return NOTHING
    return State(until, max_id or 0)


@contextmanager
def refreshed():
    """Refresh once for a block of figures (a dashboard request) rather than per figure."""
    try:
        state = refresh()
    except DatabaseError as error:
        # Each figure then refreshes on its own, and fails on its own.
        logger.warning("Rollups not refreshed: %s", error)
        state = None
    token = REFRESHED.set(state)
    try:
        yield
    finally:
        REFRESHED.reset(token)


def rebuild() -> None:
    """Forget every rollup; the next refreshes sum everything again."""
    with transaction.atomic():
        RollupState.objects.select_for_update().filter(pk=1).exists()
        RunRollup.objects.all().delete()
        RunLatencyRollup.objects.all().delete()
        RunAppLatencyRollup.objects.all().delete()
        from aimonitor.summaries import failures, latency

        failures.forget()
        latency.forget()
        RollupState.objects.update_or_create(
            pk=1, defaults={"covered_until": None, "max_id": 0, "seen_id": 0, "seen_at": None}
        )
