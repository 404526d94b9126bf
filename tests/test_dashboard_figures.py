"""The dashboard's figures, pinned on hand-made rows around their edges (SPEC.md §3, §4).

"Now" is frozen at noon (local) of the real local today, so every edge is a fixed
distance away. Each test runs with the database session in UTC and in New York:
the figures must not change, because day boundaries are computed in
AIMONITOR_TIME_ZONE, never by the database's idea of "today".
"""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone

from aimonitor.figures import calls as figures
from aimonitor.localtime import local_day_bounds, local_month_bounds
from aimonitor.scope import Scope
from tests.conftest import make_run

SECOND = dt.timedelta(seconds=1)


@pytest.fixture(autouse=True, params=["UTC", "America/New_York"])
def db_session_zone(request, db):
    """The database session's zone, which must not matter."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET TIME ZONE '{request.param}'")
    yield request.param
    with connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")


@pytest.fixture(autouse=True)
def now(monkeypatch) -> dt.datetime:
    """Noon, local time, of the real local today."""
    noon = dt.datetime.combine(timezone.localdate(), dt.time(12), tzinfo=local_zone())
    monkeypatch.setattr(timezone, "now", lambda: noon)
    return noon


def local_zone():
    return timezone.get_default_timezone()


def today() -> dt.date:
    return timezone.localdate()


def midnight(days_ago: int = 0) -> dt.datetime:
    return local_day_bounds(today() - dt.timedelta(days=days_ago))[0]


def everything() -> Scope:
    return Scope.everything()


def scope_of(site_ids) -> Scope:
    return Scope.everything() if site_ids is None else Scope.of_sites(site_ids)


def readable_times(rows: list[dict], session_zone: str, *keys: str) -> list[dict]:
    """``rows`` without their times unless the session is in UTC.

    Django sets every connection's zone to UTC and its psycopg2 cursors read
    timestamptz values as UTC; under a foreign session zone the instants read
    back are off by Django's own doing, while which rows are chosen is ours.
    """
    if session_zone == "UTC":
        return rows
    return [{k: v for k, v in row.items() if k not in keys} for row in rows]


# --- today --------------------------------------------------------------------


def test_today_runs_from_local_midnight_to_the_next(now):
    start = midnight()
    make_run(created_at=start, status="success", tokens_used=100, latency_ms=100)
    half_past = make_run(
        created_at=start + dt.timedelta(minutes=30),
        status="failed",
        tokens_used=None,
        latency_ms=None,
    )
    make_run(
        created_at=start + dt.timedelta(hours=11), status="running", tokens_used=50, latency_ms=300
    )
    make_run(created_at=local_day_bounds(today())[1] - SECOND, tokens_used=10, latency_ms=200)
    make_run(created_at=start - SECOND, tokens_used=1000, latency_ms=999)  # yesterday 23:59:59
    make_run(created_at=local_day_bounds(today())[1], tokens_used=1000)  # tomorrow 00:00

    # 00:30 local is still yesterday in UTC: a UTC "today" would miss it.
    assert half_past.created_at.astimezone(dt.UTC).date() < today()
    figures_today = figures.today(everything())

    assert figures_today["today_calls"] == 4
    assert figures_today["today_success_rate"] == 0.5  # 'running' is a call, not a success
    assert figures_today["today_tokens"] == 160  # every status; NULL counts as 0
    assert figures_today["today_avg_latency_ms"] == 200.0  # NULL latencies left out
    # percentile_cont over 100, 200, 300: 200 + 0.9 × 100
    assert figures_today["today_p95_latency_ms"] == 290.0


def test_same_hours_yesterday_runs_from_yesterday_midnight_to_24_hours_ago(now):
    make_run(created_at=midnight(1), status="failed", tokens_used=7, latency_ms=40)
    make_run(created_at=now - dt.timedelta(hours=24) - SECOND, tokens_used=3, latency_ms=60)
    make_run(created_at=now - dt.timedelta(hours=24), tokens_used=500, latency_ms=9)  # not yet
    make_run(created_at=midnight() - SECOND, tokens_used=500)  # yesterday, but later hours
    make_run(created_at=midnight(1) - SECOND, tokens_used=500)  # the day before
    make_run(created_at=midnight(), status="success", tokens_used=20, latency_ms=100)

    result = figures.today(everything())

    assert result["same_hours_yesterday"] == {
        "calls": 2,
        "success_rate": 0.5,
        "tokens": 10,
        "avg_latency_ms": 50.0,
        "p95_latency_ms": 59.0,  # 40 + 0.95 × 20
    }
    assert result["change_vs_yesterday"] == {
        "calls": -1,
        "success_rate": 0.5,
        "tokens": 10,
        "avg_latency_ms": 50.0,
        "p95_latency_ms": 41.0,
    }


def test_today_without_calls_is_all_zero():
    make_run(created_at=midnight(3))
    result = figures.today(everything())
    assert {k: v for k, v in result.items() if k.startswith("today_")} == {
        "today_calls": 0,
        "today_success_rate": 0,
        "today_tokens": 0,
        "today_avg_latency_ms": 0,
        "today_p95_latency_ms": 0,
    }
    assert set(result["same_hours_yesterday"].values()) == {0}


def test_today_rounds_rates_to_4_and_latencies_to_2_decimals():
    start = midnight()
    make_run(created_at=start, status="success", latency_ms=1)
    make_run(created_at=start, status="success", latency_ms=2)
    make_run(created_at=start, status="timeout", latency_ms=2)
    result = figures.today(everything())
    assert result["today_success_rate"] == 0.6667
    assert result["today_avg_latency_ms"] == 1.67
    assert result["today_p95_latency_ms"] == 2.0


def test_today_with_only_null_tokens_and_latencies_is_zero_not_none():
    make_run(created_at=midnight(), tokens_used=None, latency_ms=None)
    result = figures.today(everything())
    assert result["today_calls"] == 1
    assert result["today_tokens"] == 0
    assert result["today_avg_latency_ms"] == 0
    assert result["today_p95_latency_ms"] == 0


def test_today_follows_the_scope(bob):
    make_run(site_id=1, created_at=midnight())
    make_run(site_id=2, created_at=midnight())
    assert figures.today(Scope.for_user(bob))["today_calls"] == 1


def test_today_shows_the_cost_only_when_a_price_is_set(settings):
    make_run(created_at=midnight(), tokens_used=1500)
    settings.TOKEN_PRICE_PER_1K = None
    assert "today_cost" not in figures.today(everything())
    settings.TOKEN_PRICE_PER_1K = "0.02"
    assert figures.today(everything())["today_cost"] == 0.03


# --- trend_7d -----------------------------------------------------------------


def test_trend_has_seven_local_days_with_empty_days_as_zero():
    first = midnight(6)
    make_run(created_at=first, status="success")  # first second of the window
    make_run(created_at=first - SECOND, status="success")  # the second before it
    make_run(created_at=midnight(3) + dt.timedelta(hours=5), status="success")
    make_run(created_at=midnight(3) + dt.timedelta(hours=23), status="running")
    make_run(created_at=midnight() + dt.timedelta(minutes=30), status="failed")

    trend = figures.trend_7d(everything())

    day = today()
    assert [entry["date"] for entry in trend] == [
        (day - dt.timedelta(days=back)).isoformat() for back in range(6, -1, -1)
    ]
    by_day = {entry["date"]: (entry["calls"], entry["success_rate"]) for entry in trend}
    assert by_day == {
        (day - dt.timedelta(days=6)).isoformat(): (1, 1.0),
        (day - dt.timedelta(days=5)).isoformat(): (0, 0),
        (day - dt.timedelta(days=4)).isoformat(): (0, 0),
        (day - dt.timedelta(days=3)).isoformat(): (2, 0.5),
        (day - dt.timedelta(days=2)).isoformat(): (0, 0),
        (day - dt.timedelta(days=1)).isoformat(): (0, 0),
        day.isoformat(): (1, 0),
    }


def test_trend_without_calls_is_seven_zero_days():
    trend = figures.trend_7d(everything())
    assert len(trend) == 7
    assert all(entry["calls"] == 0 and entry["success_rate"] == 0 for entry in trend)


# --- app_distribution ---------------------------------------------------------


def test_app_distribution_counts_the_seven_days_largest_first():
    make_run(app_type="app2_summary", created_at=midnight(6))
    make_run(app_type="app2_summary", created_at=midnight() + dt.timedelta(minutes=30))
    make_run(app_type="app3_clue", created_at=midnight(2), status="running")
    make_run(app_type="app1_chat", created_at=midnight(1))
    make_run(app_type="app9_old", created_at=midnight(6) - SECOND)  # before the window

    assert figures.app_distribution(everything()) == [
        {"app_type": "app2_summary", "count": 2, "percentage": 0.5},
        {"app_type": "app1_chat", "count": 1, "percentage": 0.25},  # ties by name
        {"app_type": "app3_clue", "count": 1, "percentage": 0.25},
    ]


def test_app_distribution_rounds_percentages_to_4_decimals():
    for app in ("a", "b", "c"):
        make_run(app_type=app, created_at=midnight())
    assert [row["percentage"] for row in figures.app_distribution(everything())] == [
        0.3333,
        0.3333,
        0.3333,
    ]


def test_app_distribution_without_calls_is_empty():
    make_run(created_at=midnight(30))
    assert figures.app_distribution(everything()) == []


# --- app_health ---------------------------------------------------------------


def test_app_health_is_the_newest_call_of_every_app_ever_seen(now, db_session_zone):
    weeks_ago = now - dt.timedelta(weeks=5)
    make_run(app_type="app1_chat", status="success", created_at=now - dt.timedelta(minutes=5))
    make_run(app_type="app1_chat", status="failed", created_at=now - dt.timedelta(minutes=50))
    make_run(app_type="app4_old", status="timeout", created_at=weeks_ago)
    make_run(app_type="app3_clue", status="running", created_at=now - dt.timedelta(hours=2))
    make_run(app_type="app3_clue", status="success", created_at=now - dt.timedelta(hours=3))

    for site_ids in (None, [1]):  # every site (superuser) and a list of sites
        health = figures.app_health(scope_of(site_ids))
        assert readable_times(health, db_session_zone, "last_call_at") == readable_times(
            [
                {
                    "app_type": "app1_chat",
                    "last_status": "success",
                    "last_call_at": now - dt.timedelta(minutes=5),
                },
                {
                    "app_type": "app3_clue",
                    "last_status": "running",
                    "last_call_at": now - dt.timedelta(hours=2),
                },
                {"app_type": "app4_old", "last_status": "timeout", "last_call_at": weeks_ago},
            ],
            db_session_zone,
            "last_call_at",
        )


def test_app_health_keeps_to_the_sites_in_scope(now):
    make_run(site_id=1, app_type="app1_chat", status="failed", created_at=now)
    make_run(site_id=2, app_type="app1_chat", status="success", created_at=now - SECOND)
    make_run(site_id=2, app_type="app2_summary", status="success", created_at=now)
    make_run(site_id=3, app_type="app1_chat", status="circuit_open", created_at=now + SECOND)

    def health(site_ids):
        return [
            (row["app_type"], row["last_status"]) for row in figures.app_health(scope_of(site_ids))
        ]

    assert health([2]) == [("app1_chat", "success"), ("app2_summary", "success")]
    # Over two sites, the newer of the two sites' newest calls wins.
    assert health([1, 2]) == [("app1_chat", "failed"), ("app2_summary", "success")]
    assert health(None) == [("app1_chat", "circuit_open"), ("app2_summary", "success")]
    assert health([]) == []
    assert health([99]) == []


# --- budget -------------------------------------------------------------------


def test_budget_is_global_success_only_today_and_this_local_month(settings, now):
    settings.DAILY_TOKEN_LIMIT = 1000
    settings.MONTHLY_TOKEN_LIMIT = 3000
    settings.TOKEN_PRICE_PER_1K = None
    month_start = local_month_bounds(today())[0]
    make_run(site_id=1, created_at=midnight(), status="success", tokens_used=100)
    make_run(site_id=2, created_at=now, status="success", tokens_used=200)
    make_run(site_id=7, created_at=now, status="success", tokens_used=None)
    make_run(site_id=1, created_at=now, status="failed", tokens_used=1000)
    make_run(site_id=1, created_at=now, status="running", tokens_used=70)
    make_run(site_id=1, created_at=midnight() - SECOND, status="success", tokens_used=1)
    make_run(site_id=1, created_at=month_start, status="success", tokens_used=50)
    make_run(site_id=1, created_at=month_start - SECOND, status="success", tokens_used=5000)

    result = figures.budget()

    # Yesterday's 23:59:59 is this month unless today is the 1st.
    monthly = 350 + (0 if today().day == 1 else 1)
    daily = 300 + (50 if today().day == 1 else 0)
    assert result == {
        "daily_used": daily,
        "daily_limit": 1000,
        "daily_pct": round(daily / 1000, 4),
        "monthly_used": monthly,
        "monthly_limit": 3000,
        "monthly_pct": round(monthly / 3000, 4),
    }


def test_budget_percentage_is_zero_when_the_limit_is(settings):
    settings.DAILY_TOKEN_LIMIT = 0
    settings.MONTHLY_TOKEN_LIMIT = 0
    make_run(created_at=midnight(), tokens_used=10)
    result = figures.budget()
    assert (result["daily_used"], result["daily_pct"], result["monthly_pct"]) == (10, 0, 0)


def test_budget_shows_costs_when_a_price_is_set(settings):
    settings.DAILY_TOKEN_LIMIT = 1000
    settings.TOKEN_PRICE_PER_1K = "0.5"
    make_run(created_at=midnight(), tokens_used=300)
    result = figures.budget()
    assert result["daily_cost"] == 0.15
    assert result["monthly_cost"] >= 0.15


# --- recent_alerts ------------------------------------------------------------


def test_recent_alerts_are_the_ten_newest_pending_in_scope(bob, now, db_session_zone):
    pending = [
        make_run(
            site_id=1,
            status=("failed", "timeout", "circuit_open")[i % 3],
            alert_status=None if i % 2 else "pending",
            error_message=f"error {i}",
            created_at=now - dt.timedelta(minutes=i),
        )
        for i in range(12)
    ]
    make_run(site_id=1, status="failed", alert_status="acknowledged", created_at=now)
    make_run(site_id=1, status="timeout", alert_status="ignored", created_at=now)
    make_run(site_id=1, status="running", created_at=now)
    make_run(site_id=2, status="failed", created_at=now)  # another site

    alerts = figures.recent_alerts(Scope.for_user(bob))

    assert [alert["id"] for alert in alerts] == [run.id for run in pending[:10]]
    assert readable_times([alerts[1]], db_session_zone, "created_at") == readable_times(
        [
            {
                "id": pending[1].id,
                "app_type": "app1_chat",
                "status": "timeout",
                "alert_status": None,
                "error_message": "error 1",
                "created_at": now - dt.timedelta(minutes=1),
                "site_id": 1,
                "member_id": pending[1].member_id,
            }
        ],
        db_session_zone,
        "created_at",
    )
