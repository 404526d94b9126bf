"""The dashboard's rollups (aimonitor.summaries): the same figures as the raw calls, late calls
included, read in a fixed number of statements (issue #9)."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.models import Count, Q, Sum
from django.utils import timezone

from aimonitor import summaries
from aimonitor.localtime import local_day_bounds, local_today
from aimonitor.models import RollupState, RunLatencyRollup, RunLog, RunRollup
from aimonitor.scope import Scope
from aimonitor.summaries import keeping, reading
from tests.conftest import client_for

APPS = ("app1_chat", "app2_summary", "app3_clue")
STATUSES = ("success", "success", "failed", "timeout", "success", "running")


def scope_of(sites) -> Scope:
    return Scope.everything() if sites is None else Scope.of_sites(sites)


@pytest.fixture(autouse=True)
def adopt_ids_at_once(settings):
    """Ids are adopted at once, so a refresh sums everything closed (no one-minute lag)."""
    settings.ROLLUP_LAG_SECONDS = 0


def add_calls(count: int, *, since_hours: int = 24 * 9, offset: int = 0) -> list[RunLog]:
    """``count`` calls spread over the last ``since_hours`` hours, three sites and apps."""
    now = timezone.now()
    rows = []
    for i in range(offset, offset + count):
        status = STATUSES[i % len(STATUSES)]
        rows.append(
            RunLog(
                site_id=1 + i % 3,
                app_type=APPS[i % len(APPS)],
                trigger_type="event",
                status=status,
                tokens_used=None if i % 7 == 0 else 10 + i,
                latency_ms=None if i % 5 == 0 else 100 + (i * 37) % 3000,
                created_at=now - dt.timedelta(minutes=(i * 97) % (since_hours * 60)),
            )
        )
    return RunLog.objects.bulk_create(rows)


def summed(now=None) -> summaries.State:
    """Two refreshes: the first places the closed hours, the second sums the calls by id."""
    summaries.refresh(now=now)
    return summaries.refresh(now=now)


def week() -> tuple[dt.datetime, dt.datetime]:
    today = local_today()
    return local_day_bounds(today - dt.timedelta(days=6))[0], local_day_bounds(today)[1]


def raw_sums(since, until, sites=None) -> dict:
    runs = RunLog.objects.filter(created_at__gte=since, created_at__lt=until)
    if sites is not None:
        runs = runs.filter(site_id__in=sites)
    row = runs.aggregate(
        calls=Count("id"),
        successes=Count("id", filter=Q(status="success")),
        failures=Count("id", filter=Q(status__in=("failed", "timeout", "circuit_open"))),
        tokens=Sum("tokens_used"),
        success_tokens=Sum("tokens_used", filter=Q(status="success")),
        latency_sum=Sum("latency_ms"),
        latency_count=Count("latency_ms"),
    )
    return {key: value or 0 for key, value in row.items()}


def test_sums_over_rollups_equal_the_raw_calls(db):
    add_calls(400)
    state = summed()
    assert state.covered_until is not None
    assert RunRollup.objects.exists()  # the closed hours were summed
    since, until = week()
    for sites in (None, [1], [2, 3]):
        assert summaries.sums(scope_of(sites), {"week": (since, until)})["week"] == raw_sums(
            since, until, sites
        )


def test_sums_by_day_and_by_app(db):
    add_calls(300)
    summed()
    since, until = week()
    by_day = summaries.sums(Scope.of_sites([1, 2]), {"week": (since, until)}, by="day")
    for day, sums in by_day.items():
        assert sums == raw_sums(*local_day_bounds(day), sites=[1, 2])
    by_app = summaries.sums(Scope.everything(), {"week": (since, until)}, by="app")
    assert {app: s["calls"] for app, s in by_app.items()} == dict(
        RunLog.objects.filter(created_at__gte=since, created_at__lt=until)
        .values_list("app_type")
        .annotate(Count("id"))
    )


def test_a_late_call_for_a_closed_hour_is_counted_once(db):
    add_calls(200)
    summed()
    since, until = week()
    before = summaries.sums(Scope.everything(), {"week": (since, until)})["week"]["calls"]
    # The AI service writes a call for an hour the rollups already closed.
    late = add_calls(1, offset=10_000)[0]
    late.created_at = timezone.now() - dt.timedelta(days=2)
    late.save()
    # Read raw (its id is newer than the rollups) ...
    assert (
        summaries.sums(Scope.everything(), {"week": (since, until)})["week"]["calls"] == before + 1
    )
    # ... and, once summed, read from the rollups: still once.
    summaries.refresh()
    assert (
        summaries.sums(Scope.everything(), {"week": (since, until)})["week"]["calls"] == before + 1
    )
    hour = summaries.local_hour_floor(late.created_at)
    assert RunRollup.objects.filter(hour=hour).aggregate(n=Sum("calls"))["n"] == (
        RunLog.objects.filter(created_at__gte=hour, created_at__lt=hour + summaries.HOUR).count()
    )


def test_an_id_is_adopted_only_a_minute_after_it_was_seen(db, settings):
    settings.ROLLUP_LAG_SECONDS = 60
    add_calls(50)
    first = summaries.refresh()
    assert first.max_id == 0  # seen, not adopted: an older id may still be uncommitted
    assert not RunRollup.objects.exists()
    since, until = week()
    assert summaries.sums(Scope.everything(), {"week": (since, until)})["week"] == raw_sums(
        since, until
    )
    RollupState.objects.filter(pk=1).update(seen_at=timezone.now() - dt.timedelta(seconds=61))
    assert summaries.refresh().max_id == RunLog.objects.order_by("-id").first().id
    assert RunRollup.objects.exists()
    assert summaries.sums(Scope.everything(), {"week": (since, until)})["week"] == raw_sums(
        since, until
    )


def test_hours_close_after_a_grace_period(db):
    add_calls(100, since_hours=48)
    now = timezone.now()
    state = summaries.refresh(now=now)
    assert state.covered_until == summaries.local_hour_floor(now - summaries.GRACE)
    # Nothing of the hours still open went into the rollups.
    assert not RunRollup.objects.filter(hour__gte=state.covered_until).exists()


def test_emptied_table_starts_the_rollups_again(db):
    add_calls(100)
    summed()
    with connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{RunLog._meta.db_table}" RESTART IDENTITY')
    add_calls(10)
    since, until = week()
    assert summaries.sums(Scope.everything(), {"week": (since, until)})["week"] == raw_sums(
        since, until
    )


def test_rebuild_command_sums_everything_again(db):
    add_calls(100)
    summed()
    RunRollup.objects.update(calls=0)  # damaged
    out = io.StringIO()
    call_command("rollup_runs", "--rebuild", "--no-wait", stdout=out)
    assert "Rollups hold the calls created before" in out.getvalue()
    since, until = week()
    assert summaries.sums(Scope.everything(), {"week": (since, until)})["week"] == raw_sums(
        since, until
    )


def test_the_command_leaves_statistics_on_the_summaries(db):
    """The planner sees the summed rows at once, not empty tables until autovacuum.
    (ANALYZE writes pg_class in place, kept after the test's rollback: the figures are
    compared with this test's own rows.)"""
    from aimonitor.management.commands.rollup_runs import SUMMARY_MODELS

    add_calls(300)
    call_command("rollup_runs", "--no-wait", stdout=io.StringIO())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples FROM pg_class WHERE relname = ANY(%s)",
            [[model._meta.db_table for model in SUMMARY_MODELS]],
        )
        tuples = dict(cursor.fetchall())
    assert tuples[RunRollup._meta.db_table] == RunRollup.objects.count() > 0
    assert len(tuples) == len(SUMMARY_MODELS)


def test_stale_plan_is_read_again(db):
    add_calls(100)
    state = summed()
    stale = summaries.State(state.covered_until, state.max_id - 1)
    query = reading._Query(stale, Scope.everything())
    since, until = week()

    def build(q):
        q.windows({"w": (since, until)}, "SELECT %(key)s", "SELECT %(key)s", "SELECT %(key)s")
        return "SELECT * FROM ({parts}) p"

    assert query.run(build(query)) is None  # the state moved: the caller reads again


def test_p95_from_the_buckets(db):
    add_calls(500)
    summed()
    assert RunLatencyRollup.objects.exists()
    today = local_day_bounds(local_today())
    since, until = week()
    result = summaries.latency_percentiles(
        Scope.everything(), {"today": today, "week": (since, until)}, 0.95
    )
    for key, (a, b) in {"today": today, "week": (since, until)}.items():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)"
                f' FROM "{RunLog._meta.db_table}" WHERE created_at >= %s AND created_at < %s',
                [a, b],
            )
            exact = cursor.fetchone()[0]
        assert result[key] == pytest.approx(exact, rel=0.02)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([100, 200, 300], 290.0),  # percentile_cont: 200 + 0.9 × 100
        ([40, 60], 59.0),
        ([7], 7.0),
        ([], None),
    ],
)
def test_percentile_is_exact_when_values_have_buckets_of_their_own(values, expected):
    buckets = [(1, v, v) for v in values]
    assert summaries.percentile(buckets, 0.95) == expected


def test_percentile_within_a_bucket_is_between_its_ends():
    # 10 values in one bucket from 1000 to 1019: p95 lies between them.
    assert 1000 <= summaries.percentile([(10, 1000, 1019)], 0.95) <= 1019
    assert summaries.percentile([(2, 1000, 1019)], 0.5) == pytest.approx(1009.5)


def test_reading_runs_a_fixed_number_of_statements(db, django_assert_num_queries):
    since, until = week()
    add_calls(20)
    with django_assert_num_queries(2):  # refresh, read
        summaries.sums(Scope.everything(), {"week": (since, until)})
    add_calls(200, offset=20)
    with django_assert_num_queries(2):
        summaries.sums(Scope.everything(), {"week": (since, until)})


def test_a_request_sums_a_bounded_step_and_figures_stay_exact_meanwhile(db, monkeypatch):
    monkeypatch.setattr(keeping, "STEP_IDS", 40)
    calls = add_calls(100)
    since, until = week()
    expected = raw_sums(since, until)
    states = [summaries.refresh() for _ in range(5)]
    # One refresh places the closed hours, then each adopts at most 40 more ids.
    assert [s.max_id - calls[0].id + 1 for s in states[1:]] == [40, 80, 100, 100]
    for _ in states:
        assert summaries.sums(Scope.everything(), {"week": (since, until)})["week"] == expected


def test_dashboard_json_is_the_same_read_raw_and_read_from_rollups(client, root):
    add_calls(600)
    client_for(client, root)
    # A fixed window for the range figures: "24h" would end at each request's moment.
    now = timezone.localtime()
    window = (
        f"since={(now - dt.timedelta(days=3)):%Y-%m-%dT%H:%M}"
        f"&until={(now + dt.timedelta(hours=1)):%Y-%m-%dT%H:%M}"
    )
    for query in (f"?{window}", f"?site=2&{window}"):
        raw = client.get(f"/dashboard.json{query}").json()  # first refresh: nothing summed
        assert RollupState.objects.get(pk=1).max_id == 0
        summed_body = client.get(f"/dashboard.json{query}").json()  # now from the rollups
        assert RunRollup.objects.exists()
        assert summed_body == raw
        summaries.rebuild()
