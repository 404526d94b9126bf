"""Retention: removing old calls (dropping a month's partition, or DELETE on the plain
table) leaves the rollups' closed hours as they were (docs/SCALING.md).

Runs on both table variants (``make test-partitioned``): on the partitioned one the old
month's partition is detached and dropped, as a retention job would.
"""

from __future__ import annotations

import datetime as dt

from django.db import connection
from django.utils import timezone

from aimonitor import summaries
from aimonitor.localtime import local_day_bounds
from aimonitor.models import RunLog
from aimonitor.scope import Scope
from tests.conftest import PARTITIONED, make_run


def remove_calls_before(cutoff: dt.datetime) -> list[str]:
    """What a retention job does; the partitions dropped (none on the plain table)."""
    table = connection.ops.quote_name(RunLog._meta.db_table)
    with connection.cursor() as cursor:
        if not PARTITIONED:
            cursor.execute(f"DELETE FROM {table} WHERE created_at < %s", [cutoff])
            return []
        cursor.execute(
            f"SELECT DISTINCT tableoid::regclass::text FROM {table} WHERE created_at < %s",
            [cutoff],
        )
        partitions = [row[0] for row in cursor.fetchall()]
        for partition in partitions:
            assert not partition.endswith("_default")  # the old month has its own partition
            cursor.execute(f"ALTER TABLE {table} DETACH PARTITION {partition}")
            cursor.execute(f"DROP TABLE {partition}")
    return partitions


def test_dropping_old_calls_keeps_their_hours_in_the_rollups(db, settings):
    settings.ROLLUP_LAG_SECONDS = 0
    now = timezone.now()
    old_day = timezone.localdate(now - dt.timedelta(days=95))
    old_start = local_day_bounds(old_day)[0]
    for minutes in (60, 61, 600):
        make_run(created_at=old_start + dt.timedelta(minutes=minutes), tokens_used=10)
    make_run(created_at=now - dt.timedelta(days=1), tokens_used=5)
    windows = {"old": local_day_bounds(old_day), "recent": (now - dt.timedelta(days=2), now)}
    summaries.refresh(unbounded=True)
    summaries.refresh(unbounded=True)
    before = summaries.sums(Scope.everything(), windows)

    dropped = remove_calls_before(now - dt.timedelta(days=60))
    state = summaries.refresh(unbounded=True)

    assert len(dropped) == (1 if PARTITIONED else 0)
    assert not RunLog.objects.filter(created_at__lt=now - dt.timedelta(days=60)).exists()
    after = summaries.sums(Scope.everything(), windows)
    assert before["old"]["calls"] == after["old"]["calls"] == 3
    assert after["old"]["success_tokens"] == 30
    assert after["recent"]["calls"] == before["recent"]["calls"] == 1
    # Not taken for an emptied table (that would rebuild): the newest id is unchanged.
    assert state.covered_until is not None and state.max_id == RunLog.objects.latest("id").id


def test_dropped_failures_keep_their_counts_and_lose_their_pending_alerts(db, settings):
    """The failure groups of dropped hours keep their counts (like the rollups); their
    pending alerts are gone with the calls, at once on the page and in the stored counts
    after the worker's recount."""
    from aimonitor.figures.failures import failure_groups
    from aimonitor.summaries import failures
    from aimonitor.timerange import TimeRange

    settings.ROLLUP_LAG_SECONDS = 0
    now = timezone.now()
    old_start = local_day_bounds(timezone.localdate(now - dt.timedelta(days=95)))[0]
    for minutes in (60, 61):
        make_run(created_at=old_start + dt.timedelta(minutes=minutes), status="timeout")
    make_run(created_at=now - dt.timedelta(days=1), status="timeout")
    summaries.refresh(unbounded=True)
    summaries.refresh(unbounded=True)
    window = TimeRange(old_start - dt.timedelta(days=1), now)

    def counts():
        (group,) = failure_groups(Scope.everything(), window).groups
        return group["count"], group["pending"]

    assert counts() == (3, 3)
    remove_calls_before(now - dt.timedelta(days=60))
    summaries.refresh(unbounded=True)
    assert counts() == (3, 1)  # the dropped hour's pending alerts, counted live: none
    assert failures.count_pending() == (1, 1)  # the dropped hour and site, counted again
    assert failures.count_pending() == (0, 0)
    assert counts() == (3, 1)
