"""The dashboard's figures for a time range (SPEC.md §8) against a raw-SQL oracle:
closed hours read from the rollups, the edges raw; counts, sums and means exact, p95
within 2 %; midnight, range-edge, late and NULL cases."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from aimonitor import summaries
from aimonitor.figures import calls as figures
from aimonitor.models import AppPrice, RunLog
from aimonitor.scope import Scope
from aimonitor.timerange import TimeRange
from tests.conftest import client_for, make_run

APPS = ("app1_chat", "app2_summary", "app3_clue")
STATUSES = ("success", "failed", "success", "timeout", "circuit_open", "success", "running")


@pytest.fixture(autouse=True)
def adopt_ids_at_once(settings):
    settings.ROLLUP_LAG_SECONDS = 0


def midnight(days_back: int = 0) -> dt.datetime:
    day = timezone.localdate() - dt.timedelta(days=days_back)
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def add_calls(count: int, now: dt.datetime) -> None:
    rows = []
    for i in range(count):
        rows.append(
            RunLog(
                site_id=1 + i % 3,
                app_type=APPS[i % 3],
                trigger_type="event",
                status=STATUSES[i % len(STATUSES)],
                tokens_used=None if i % 6 == 0 else 5 + i,
                latency_ms=None if i % 4 == 0 else 50 + (i * 53) % 4000,
                created_at=now - dt.timedelta(minutes=(i * 37) % (60 * 24 * 8)),
            )
        )
    # Midnight exactly, and one microsecond before it.
    for moment in (midnight(1), midnight(1) - dt.timedelta(microseconds=1)):
        rows.append(
            RunLog(
                site_id=1,
                app_type="app1_chat",
                trigger_type="event",
                status="timeout",
                tokens_used=None,
                latency_ms=None,
                created_at=moment,
            )
        )
    RunLog.objects.bulk_create(rows)


ORACLE = """
SELECT app_type, count(*), count(*) FILTER (WHERE status IN ('failed','timeout','circuit_open')),
       count(*) FILTER (WHERE status = 'success'), coalesce(sum(tokens_used), 0),
       avg(latency_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM biz.ai_run_logs
WHERE created_at >= %(since)s AND created_at < %(until)s AND site_id = ANY(%(sites)s)
GROUP BY ROLLUP (app_type)
"""


def oracle(window: TimeRange, sites) -> dict:
    with connection.cursor() as cursor:
        cursor.execute(ORACLE, {"since": window.since, "until": window.until, "sites": sites})
        return {row[0]: row[1:] for row in cursor.fetchall()}


def close_enough(p95, exact) -> bool:
    if exact is None:
        return p95 == 0.0
    return abs(p95 - float(exact)) <= 0.02 * float(exact) + 0.01


def check(window: TimeRange, sites, site_ids) -> None:
    got = figures.range_figures(
        Scope.everything() if site_ids is None else Scope.of_sites(site_ids), window
    )
    expected = oracle(window, sites)
    total = expected.get(None, (0, 0, 0, 0, None, None))
    r = got["range"]
    assert (r["calls"], r["failures"], r["tokens"]) == (total[0], total[1], total[3])
    assert r["success_rate"] == figures.ratio(total[2], total[0])
    assert r["avg_latency_ms"] == figures.milliseconds(total[4])
    assert close_enough(r["p95_latency_ms"], total[5])
    apps = {row["app_type"]: row for row in got["apps"]}
    assert set(apps) == {key for key in expected if key is not None}
    for app, (calls, failures, _ok, tokens, avg, p95) in expected.items():
        if app is None:
            continue
        row = apps[app]
        assert (row["calls"], row["failures"], row["tokens"]) == (calls, failures, tokens)
        assert row["failure_rate"] == figures.ratio(failures, calls)
        assert row["avg_latency_ms"] == figures.milliseconds(avg)
        assert close_enough(row["p95_latency_ms"], p95), (app, row["p95_latency_ms"], p95)
    order = [(-a["failures"], -a["calls"], a["app_type"]) for a in got["apps"]]
    assert order == sorted(order)


@pytest.mark.parametrize("sites", [None, [1], [2, 3]])
def test_range_figures_match_the_oracle(db, sites):
    now = timezone.now()
    add_calls(1500, now)
    summaries.refresh()
    state = summaries.refresh()
    assert state.covered_until is not None  # closed hours come from the rollups
    # A late call: created in a closed hour after it was summed (read raw, by id).
    make_run(
        site_id=1,
        app_type="app2_summary",
        status="failed",
        latency_ms=99999,
        created_at=now - dt.timedelta(hours=5),
    )
    all_sites = sites or [1, 2, 3]
    windows = [
        TimeRange.last("24h", now),
        TimeRange.last("7d", now),
        TimeRange.last("15m", now),
        TimeRange(
            midnight(1), midnight(0)
        ),  # midnight to midnight: the edge call in, not the one before
        TimeRange(midnight(1) + dt.timedelta(minutes=7), now - dt.timedelta(minutes=3)),
        TimeRange(now - dt.timedelta(days=40), now - dt.timedelta(days=35)),  # nothing
    ]
    for window in windows:
        with summaries.refreshed():
            check(window, all_sites, sites)


def test_apps_carry_their_last_call_and_failure_in_the_range(db):
    now = timezone.now()
    make_run(app_type="app3_clue", status="timeout", created_at=now - dt.timedelta(hours=2))
    last = make_run(app_type="app3_clue", status="success", created_at=now - dt.timedelta(hours=1))
    make_run(app_type="app3_clue", status="failed", created_at=now - dt.timedelta(hours=30))
    got = figures.range_figures(Scope.everything(), TimeRange.last("24h"))
    (app,) = got["apps"]
    assert app["last_status"] == "success" and app["last_call_at"] == last.created_at
    assert app["last_failure_at"] == now - dt.timedelta(hours=2)
    assert app["failures"] == 1 and app["calls"] == 2


def test_cost_per_app_with_the_global_fallback(db, settings):
    now = timezone.now()
    make_run(app_type="app1_chat", tokens_used=2000, created_at=now)
    make_run(app_type="app3_clue", tokens_used=500, created_at=now)
    window = TimeRange.last("1h")
    settings.TOKEN_PRICE_PER_1K = None
    got = figures.range_figures(Scope.everything(), window)
    assert got["range"]["cost"] is None and all(a["cost"] is None for a in got["apps"])
    AppPrice.objects.create(app_type="app1_chat", price_per_1k=Decimal("0.5"))
    got = figures.range_figures(Scope.everything(), window)
    costs = {a["app_type"]: a["cost"] for a in got["apps"]}
    assert costs == {"app1_chat": 1.0, "app3_clue": None}
    assert got["range"]["cost"] is None  # one app's cost is unknown
    settings.TOKEN_PRICE_PER_1K = "0.1"
    got = figures.range_figures(Scope.everything(), window)
    assert {a["app_type"]: a["cost"] for a in got["apps"]} == {"app1_chat": 1.0, "app3_clue": 0.05}
    assert got["range"]["cost"] == 1.05


def test_dashboard_json_and_page_show_the_range(client, alice, settings):
    settings.AIMONITOR_CURRENCY = "CNY"
    make_run(site_id=1, app_type="app3_clue", status="timeout", created_at=timezone.now())
    data = client_for(client, alice).get("/dashboard.json?range=1h").json()
    assert data["range"]["calls"] == 1 and data["range"]["failures"] == 1
    assert data["apps"][0]["app_type"] == "app3_clue"
    page = client.get("/?range=1h&site=1").content.decode()
    assert 'href="/failures/?app_type=app3_clue&amp;range=1h&amp;site=1"' in page
    assert 'href="/runs/?app_type=app3_clue&amp;range=1h&amp;site=1"' in page
    # The 7-day bars link to that day's runs.
    assert (
        f'href="/runs/?date_from={timezone.localdate()}&amp;date_to={timezone.localdate()}&amp;site=1"'
        in page
    )


@pytest.mark.parametrize("by", ["window", "app"])
def test_every_latency_is_read_once_from_hours_days_and_raw_calls(db, by):
    """A window's latency buckets hold each of its calls' latencies exactly once, whether
    its last day is read from the day row (a window up to now: the rollups stop at
    covered_until), from the hours (a window ending earlier), or raw."""
    from aimonitor.scope import Scope
    from aimonitor.summaries.reading import _sums_and_buckets

    now = timezone.now()
    add_calls(1500, now)
    summaries.refresh()
    state = summaries.refresh()
    windows = {
        "24h": (now - dt.timedelta(hours=24), now),
        "7d": (now - dt.timedelta(days=7), now),
        "to_covered": (midnight(2) + dt.timedelta(minutes=7), state.covered_until),
        "earlier": (midnight(3), now - dt.timedelta(hours=30)),
    }
    for name, (since, until) in windows.items():
        _sums, buckets = _sums_and_buckets(Scope.everything(), {name: (since, until)}, by)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(latency_ms) FROM biz.ai_run_logs "
                "WHERE created_at >= %s AND created_at < %s",
                [since, until],
            )
            expected = cursor.fetchone()[0]
        assert sum(calls for _key, _bucket, calls, _lo, _hi in buckets) == expected, name
