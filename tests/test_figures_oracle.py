"""Every row the data contract allows gives exact dashboard figures (issue #13, item 1).

Hypothesis generates *rows*: the extremes of each integer column (2,147,483,647 and
−2,147,483,648), NULL in every nullable column, negative latencies from clock skew,
statuses and app types never seen before (64 characters, spaces, other scripts), and
times on both sides of local midnight, of "24 hours ago" and of the month's start. They
are inserted, partly summed into the rollups and partly left raw (late calls
included), and every figure of the dashboard is compared with one raw-SQL oracle over
the same rows, in the console's zone. p95 is compared within the rollups' documented
precision (its neighbouring values within 2 %); everything else must be equal.
"""

from __future__ import annotations

import datetime as dt
import io
import os

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from django.db import connection
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aimonitor import summaries
from aimonitor.figures import calls as figures
from aimonitor.localtime import local_day_bounds
from aimonitor.models import RunLog
from aimonitor.scope import Scope
from tests.conftest import client_for, make_run

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
EXAMPLES = settings(
    max_examples=int(os.environ.get("AIMONITOR_ORACLE_EXAMPLES", 30)),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

integers = st.one_of(
    st.none(),
    st.sampled_from([INT_MAX, INT_MIN, INT_MAX - 1, 0, -1, 1]),
    st.integers(INT_MIN, INT_MAX),
    st.integers(-5000, 5000),
)
app_types = st.one_of(
    st.sampled_from(["app1_chat", "app2_summary", "a" * 64, "chat v2", "静安旗舰店应用", "Z"]),
    st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=64),
)
statuses = st.sampled_from(
    ["success", "failed", "timeout", "circuit_open", "running", "never_seen", "SUCCESS", "s" * 32]
)
# Seconds before (positive) or after (negative) a landmark of the local calendar.
landmarks = st.sampled_from(
    ["midnight", "yesterday", "day_ago", "week_start", "month_start", "now"]
)
nudges = st.one_of(
    st.sampled_from([0, 1, -1, 3600, -3600, 59, -59]), st.integers(-3 * 86400, 3 * 86400)
)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "site_id": st.sampled_from([1, 2, 3, 2**63 - 1]),
            "app_type": app_types,
            "status": statuses,
            "tokens_used": integers,
            "latency_ms": integers,
            "landmark": landmarks,
            "nudge": nudges,
            "late": st.booleans(),
        }
    ),
    max_size=12,
)
# "Now": just after local midnight, midday, just before the next midnight.
clock = st.sampled_from([dt.time(0, 0, 30), dt.time(0, 7), dt.time(12), dt.time(23, 59, 30)])
scopes = st.sampled_from([None, [1], [2, 2**63 - 1]])


def moment(landmark: str, nudge: int, now: dt.datetime) -> dt.datetime:
    day = timezone.localdate(now)
    starts = {
        "midnight": local_day_bounds(day)[0],
        "yesterday": local_day_bounds(day - dt.timedelta(days=1))[0],
        "day_ago": now - dt.timedelta(hours=24),
        "week_start": local_day_bounds(day - dt.timedelta(days=6))[0],
        "month_start": local_day_bounds(day.replace(day=1))[0],
        "now": now,
    }
    return starts[landmark] + dt.timedelta(seconds=nudge)


ORACLE = """
WITH bounds AS (
    SELECT date_trunc('day', %(now)s::timestamptz AT TIME ZONE %(zone)s) AS day
), runs AS (
    SELECT r.* FROM {table} r WHERE %(sites)s::bigint[] IS NULL OR r.site_id = ANY(%(sites)s)
)
SELECT 'today', NULL::text, count(*), count(*) FILTER (WHERE status = 'success'),
       coalesce(sum(tokens_used), 0), avg(latency_ms::numeric),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM runs, bounds
WHERE created_at >= (day AT TIME ZONE %(zone)s)
  AND created_at < ((day + interval '1 day') AT TIME ZONE %(zone)s)
UNION ALL
SELECT 'yesterday', NULL, count(*), count(*) FILTER (WHERE status = 'success'),
       coalesce(sum(tokens_used), 0), avg(latency_ms::numeric),
       percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
FROM runs, bounds
WHERE created_at >= ((day - interval '1 day') AT TIME ZONE %(zone)s)
  AND created_at < %(now)s::timestamptz - interval '24 hours'
UNION ALL
SELECT 'day', ((created_at AT TIME ZONE %(zone)s)::date)::text, count(*),
       count(*) FILTER (WHERE status = 'success'), NULL, NULL, NULL
FROM runs, bounds
WHERE created_at >= ((day - interval '6 days') AT TIME ZONE %(zone)s)
  AND created_at < ((day + interval '1 day') AT TIME ZONE %(zone)s)
GROUP BY 2
UNION ALL
SELECT 'app', app_type, count(*), NULL, NULL, NULL, NULL
FROM runs, bounds
WHERE created_at >= ((day - interval '6 days') AT TIME ZONE %(zone)s)
  AND created_at < ((day + interval '1 day') AT TIME ZONE %(zone)s)
GROUP BY 2
UNION ALL
SELECT 'budget', NULL,
       coalesce(sum(tokens_used) FILTER (
           WHERE created_at >= (day AT TIME ZONE %(zone)s)
             AND created_at < ((day + interval '1 day') AT TIME ZONE %(zone)s)), 0),
       coalesce(sum(tokens_used) FILTER (
           WHERE created_at >= (date_trunc('month', day) AT TIME ZONE %(zone)s)
             AND created_at < ((date_trunc('month', day) + interval '1 month') AT TIME ZONE %(zone)s)), 0),
       NULL, NULL, NULL
FROM {table}, bounds WHERE status = 'success'
"""

LATENCIES = """
SELECT latency_ms FROM {table}
WHERE latency_ms IS NOT NULL AND created_at >= %(a)s AND created_at < %(b)s
  AND (%(sites)s::bigint[] IS NULL OR site_id = ANY(%(sites)s))
ORDER BY latency_ms
"""

HEALTH = """
SELECT app_type, max(created_at), array_agg(status) FROM {table} r
WHERE (%(sites)s::bigint[] IS NULL OR site_id = ANY(%(sites)s))
  AND created_at = (SELECT max(created_at) FROM {table} s
                    WHERE s.app_type = r.app_type
                      AND (%(sites)s::bigint[] IS NULL OR s.site_id = ANY(%(sites)s)))
GROUP BY app_type ORDER BY app_type
"""


def oracle(now: dt.datetime, sites: list[int] | None) -> dict:
    table = connection.ops.quote_name(RunLog._meta.db_table)
    params = {"now": now, "zone": str(django_settings.TIME_ZONE), "sites": sites}
    with connection.cursor() as cursor:
        cursor.execute(ORACLE.format(table=table), params)
        rows = cursor.fetchall()
        cursor.execute(HEALTH.format(table=table), params)
        health = cursor.fetchall()
    return {"rows": rows, "health": health}


def p95_tolerance(now, window, sites) -> float:
    """How far the rollups' p95 may be from percentile_cont: 2 % of its neighbours."""
    table = connection.ops.quote_name(RunLog._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            LATENCIES.format(table=table), {"a": window[0], "b": window[1], "sites": sites}
        )
        values = [row[0] for row in cursor.fetchall()]
    if not values:
        return 0.0
    position = 0.95 * (len(values) - 1)
    low, high = values[int(position)], values[min(int(position) + 1, len(values) - 1)]
    return 0.0201 * max(abs(low), abs(high)) + 0.03


def scoped(sites) -> Scope:
    return Scope.everything() if sites is None else Scope.of_sites(sites)


def insert(batch: list[dict], now: dt.datetime) -> None:
    RunLog.objects.bulk_create(
        RunLog(
            site_id=row["site_id"],
            app_type=row["app_type"],
            trigger_type="event",
            status=row["status"],
            tokens_used=row["tokens_used"],
            latency_ms=row["latency_ms"],
            member_id=None,
            session_id=None,
            request_prompt=None,
            response_text=None,
            error_message=None,
            alert_status=None,
            finished_at=None,
            created_at=moment(row["landmark"], row["nudge"], now),
        )
        for row in batch
    )


@pytest.fixture
def fresh(db, settings):
    settings.ROLLUP_LAG_SECONDS = 0


@given(batch=rows, at=clock, sites=scopes, summed=st.booleans())
@EXAMPLES
def test_figures_equal_the_raw_sql_oracle(fresh, monkeypatch, batch, at, sites, summed):
    RunLog.objects.all().delete()
    summaries.rebuild()
    now = dt.datetime.combine(
        timezone.localdate(), at, tzinfo=timezone.get_default_timezone()
    ) - dt.timedelta(days=1)
    monkeypatch.setattr(timezone, "now", lambda: now)

    insert([row for row in batch if not row["late"]], now)
    if summed:
        summaries.refresh(now=now)
        summaries.refresh(now=now)
    insert([row for row in batch if row["late"]], now)  # late calls: read raw

    runs = scoped(sites)
    with summaries.refreshed():
        today = figures.today(runs)
        trend = figures.trend_7d(runs)
        distribution = figures.app_distribution(runs)
        health = figures.app_health(runs)
        budget = figures.budget()
    expected = oracle(now, sites)
    by_kind: dict[str, list] = {}
    for kind, key, *values in expected["rows"]:
        by_kind.setdefault(kind, []).append((key, *values))

    day = timezone.localdate(now)
    windows = {
        "today": local_day_bounds(day),
        "yesterday": (
            local_day_bounds(day - dt.timedelta(days=1))[0],
            now - dt.timedelta(hours=24),
        ),
    }
    for name, ours in (("today", today), ("yesterday", today["same_hours_yesterday"])):
        _, calls, successes, tokens, avg, p95 = by_kind[name][0]
        prefix = "today_" if name == "today" else ""
        assert ours[f"{prefix}calls"] == calls
        assert ours[f"{prefix}success_rate"] == figures.ratio(successes, calls)
        assert ours[f"{prefix}tokens"] == tokens
        assert abs(ours[f"{prefix}avg_latency_ms"] - float(avg or 0)) <= 0.005 + 1e-6
        tolerance = p95_tolerance(now, windows[name], sites)
        assert abs(ours[f"{prefix}p95_latency_ms"] - (p95 or 0.0)) <= tolerance

    per_day = {key: (calls, successes) for key, calls, successes, *_ in by_kind.get("day", [])}
    assert trend == [
        {
            "date": entry["date"],
            "calls": per_day.get(entry["date"], (0, 0))[0],
            "success_rate": figures.ratio(*reversed(per_day.get(entry["date"], (0, 0)))),
        }
        for entry in trend
    ]
    assert sum(entry["calls"] for entry in trend) == sum(c for c, _ in per_day.values())

    counts = sorted(
        ((calls, app) for app, calls, *_ in by_kind.get("app", [])), key=lambda x: (-x[0], x[1])
    )
    total = sum(calls for calls, _ in counts)
    assert distribution == [
        {"app_type": app, "count": calls, "percentage": figures.ratio(calls, total)}
        for calls, app in counts
    ]

    assert [(h["app_type"], h["last_call_at"]) for h in health] == [
        (app, last) for app, last, _ in expected["health"]
    ]
    for entry, (_, _, statuses_at_last) in zip(health, expected["health"], strict=True):
        assert entry["last_status"] in statuses_at_last

    _, daily, monthly, *_ = by_kind["budget"][0]
    assert (budget["daily_used"], budget["monthly_used"]) == (daily, monthly)


def test_the_largest_integers_keep_every_panel_and_the_json_working(client, root, settings):
    """2,147,483,647 tokens and ms (and the smallest integer) in closed and open hours."""
    settings.ROLLUP_LAG_SECONDS = 0
    now = timezone.now()
    for hours in (0, 3, 30):
        for value in (INT_MAX, INT_MIN, None):
            make_run(
                tokens_used=value, latency_ms=value, created_at=now - dt.timedelta(hours=hours)
            )
    out = io.StringIO()
    call_command("rollup_runs", stdout=out)
    client_for(client, root)
    figures_json = client.get("/dashboard.json")
    assert figures_json.status_code == 200
    assert figures_json.json()["today_tokens"] == sum(
        v
        for v in RunLog.objects.filter(
            created_at__gte=local_day_bounds(timezone.localdate())[0]
        ).values_list("tokens_used", flat=True)
        if v is not None
    )
    for panel in figures.__dict__.get("PANELS", ()) or (
        "today",
        "trend_7d",
        "app_distribution",
        "app_health",
        "budget",
        "recent_alerts",
    ):
        page = client.get(f"/dashboard/panels/{panel}/")
        assert page.status_code == 200, panel
        assert b"unavailable" not in page.content.lower(), panel


def test_many_largest_latencies_sum_exactly(db, settings):
    """A thousand calls of 2,147,483,647 ms: sums beyond integer stay exact (bigint)."""
    settings.ROLLUP_LAG_SECONDS = 0
    created = timezone.now() - dt.timedelta(hours=30)
    RunLog.objects.bulk_create(
        RunLog(
            site_id=1,
            app_type="a",
            trigger_type="event",
            status="success",
            tokens_used=INT_MAX,
            latency_ms=INT_MAX,
            created_at=created,
        )
        for _ in range(1000)
    )
    summaries.refresh()
    summaries.refresh()
    window = {"w": (created - dt.timedelta(hours=1), created + dt.timedelta(hours=1))}
    sums = summaries.sums(Scope.everything(), window)["w"]
    assert sums["tokens"] == sums["success_tokens"] == 1000 * INT_MAX
    assert sums["latency_sum"] == 1000 * INT_MAX
    assert summaries.latency_percentiles(Scope.everything(), window, 0.95)["w"] == INT_MAX
