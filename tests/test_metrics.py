"""/metrics: guarded by a bearer token; the figures agree with SQL over the rows."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from aimonitor.localtime import local_day_bounds, local_today
from alerts.models import AlertRule, Incident
from tests.conftest import make_job, make_run

TOKEN = "metrics-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.DAILY_TOKEN_LIMIT = 1000


def samples(client) -> dict[tuple, float]:
    response = client.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query.replace("RUNS", '"biz"."ai_run_logs"'), params)
        return cursor.fetchall()


def test_unset_token_is_404_and_wrong_token_401(client, settings, db):
    settings.METRICS_TOKEN = None
    assert client.get("/metrics", headers=AUTH).status_code == 404
    settings.METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": TOKEN}).status_code == 401
    assert client.post("/metrics", headers=AUTH).status_code == 405


def test_figures_agree_with_sql(client, token, db):
    now = timezone.now()
    day_start = local_day_bounds(local_today())[0]
    earlier = max(day_start, now - dt.timedelta(minutes=50))
    rows = [
        (1, "app1_chat", "success", 100, 200, now - dt.timedelta(minutes=1)),
        (1, "app1_chat", "failed", 50, 900, now - dt.timedelta(minutes=2)),
        (1, "app1_chat", "timeout", None, None, now - dt.timedelta(minutes=3)),
        (2, "app3_clue", "success", 300, 1200, now - dt.timedelta(minutes=4)),
        (2, "app3_clue", "circuit_open", 10, 50, earlier),
        (2, "app3_clue", "success", 400, 100, earlier),
        (1, "app1_chat", "success", 999, 100, day_start - dt.timedelta(minutes=5)),  # yesterday
    ]
    for site, app, status, tokens, latency, at in rows:
        make_run(
            site_id=site,
            app_type=app,
            status=status,
            tokens_used=tokens,
            latency_ms=latency,
            created_at=at,
        )
    make_job(status="pending", created_at=now - dt.timedelta(minutes=40))
    make_job(status="pending", created_at=now - dt.timedelta(minutes=1))
    make_job(status="failed", created_at=now)
    rule = AlertRule.objects.create(name="Chat failing", kind="failure_count", threshold=1)
    Incident.objects.create(rule=rule, key="k", last_value=2, threshold=1, window_minutes=15)

    found = samples(client)
    today = local_day_bounds(local_today())
    for window, since in (("today", today[0]), ("5m", now - dt.timedelta(minutes=5))):
        expected = sql(
            """SELECT site_id::text, app_type, count(*),
                      count(*) FILTER (WHERE status IN ('failed', 'timeout', 'circuit_open')),
                      coalesce(sum(tokens_used), 0)
               FROM RUNS WHERE created_at >= %s AND created_at < %s GROUP BY 1, 2""",
            [since, today[1]],
        )
        assert expected
        for site, app, calls, failures, tokens in expected:
            labels = (("app_type", app), ("site", site), ("window", window))
            assert found[("aimonitor_calls", labels)] == calls
            assert found[("aimonitor_failures", labels)] == failures
            assert found[("aimonitor_tokens", labels)] == tokens
    for app, p95 in sql(
        """SELECT app_type, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FROM RUNS
           WHERE created_at >= %s AND latency_ms IS NOT NULL GROUP BY 1""",
        [now - dt.timedelta(minutes=5)],
    ):
        assert found[("aimonitor_latency_p95_ms", (("app_type", app),))] == pytest.approx(
            p95, rel=0.02
        )
    (daily,) = sql(
        "SELECT coalesce(sum(tokens_used), 0) FROM RUNS WHERE status = 'success' AND created_at >= %s",
        [today[0]],
    )[0]
    assert found[("aimonitor_budget_daily_used_tokens", ())] == daily == 800
    assert found[("aimonitor_budget_daily_limit_tokens", ())] == 1000
    assert found[("aimonitor_jobs_today", (("status", "pending"),))] == 2
    assert found[("aimonitor_jobs_today", (("status", "failed"),))] == 1
    assert found[("aimonitor_jobs_stuck", ())] == 1
    assert (
        found[("aimonitor_open_incidents", (("kind", "failure_count"), ("rule", "Chat failing")))]
        == 1
    )


def test_a_scrape_runs_a_fixed_number_of_queries(client, token, db):
    from django.test.utils import CaptureQueriesContext

    def scrape() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/metrics", headers=AUTH).status_code == 200
        return len(captured)

    for n in range(5):
        make_run(site_id=1 + n % 3, app_type=f"app{n}_x", status="failed")
    few = scrape()
    for n in range(50):
        make_run(site_id=1 + n % 7, app_type=f"app{n % 9}_y", status="failed")
        make_job(status="pending")
    assert scrape() == few
