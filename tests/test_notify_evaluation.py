"""Rule evaluation against a raw-SQL oracle: every kind, per site or every site, per app
or each app, windows, min_calls, the window's edges and NULL latencies."""

from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest
from django.db import connection
from django.test import override_settings
from django.utils import timezone

from aimonitor.models import RunLog, TriggerJob
from alerts.evaluation import evaluate, key_for
from alerts.models import AlertRule
from tests.conftest import make_job, make_run

NOW = timezone.now().replace(microsecond=0)
RUNS = f'"{RunLog._meta.db_table}"'
JOBS = f'"{TriggerJob._meta.db_table}"'


def rule(**fields) -> AlertRule:
    values = {"name": "r", "kind": "failure_rate", "window_minutes": 15, "threshold": 0.5}
    values.update(fields)
    return AlertRule.objects.create(**values)


def oracle(rule: AlertRule, now: dt.datetime) -> dict[str, float]:
    """What should fire, straight from the rows: ``{key: value}``."""
    since = now - dt.timedelta(minutes=rule.window_minutes)
    with connection.cursor() as cursor:
        if rule.kind == "budget":
            return {}  # compared with the dashboard's figure in its own test
        if rule.kind == "stuck_jobs":
            cursor.execute(
                f"SELECT count(*) FROM {JOBS} WHERE status = 'pending' AND created_at < %s"
                + ("" if rule.site_id is None else " AND site_id = %s"),
                [since] + ([] if rule.site_id is None else [rule.site_id]),
            )
            count = cursor.fetchone()[0]
            return {key_for(rule.site_id, ""): count} if count >= rule.threshold else {}
        site = "" if rule.site_id is None else f" AND site_id = {int(rule.site_id)}"
        if rule.app_type:
            apps = [rule.app_type]
        else:
            cursor.execute(
                f"SELECT DISTINCT app_type FROM {RUNS} WHERE created_at >= %s AND created_at < %s"
                + site,
                [since, now],
            )
            apps = [row[0] for row in cursor.fetchall()]
        fired = {}
        for app in apps:
            cursor.execute(
                f"""SELECT count(*),
                           count(*) FILTER (WHERE status IN ('failed', 'timeout', 'circuit_open')),
                           percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
                    FROM {RUNS} WHERE created_at >= %s AND created_at < %s AND app_type = %s"""
                + site,
                [since, now, app],
            )
            calls, failures, p95 = cursor.fetchone()
            key = key_for(rule.site_id, app)
            if rule.kind == "silence":
                if calls == 0:
                    fired[key] = 0
            elif rule.kind == "failure_count":
                if failures >= rule.threshold:
                    fired[key] = failures
            elif calls >= rule.min_calls and calls:
                value = failures / calls if rule.kind == "failure_rate" else p95
                if value is not None and value >= rule.threshold:
                    fired[key] = value
        return fired


def found(rules, now=NOW) -> dict[int, dict[str, float]]:
    return {
        rule_id: {f.key: f.value for f in findings}
        for rule_id, findings in evaluate(rules, now).items()
    }


@pytest.fixture
def random_calls(db):
    """A few hundred calls over two hours: two sites, three apps, every status, NULLs."""
    rng = random.Random(17)
    statuses = ["success"] * 6 + ["failed", "timeout", "circuit_open", "running"]
    for _ in range(400):
        make_run(
            site_id=rng.choice([1, 2]),
            app_type=rng.choice(["app1_chat", "app2_summary", "app3_clue"]),
            status=rng.choice(statuses),
            latency_ms=rng.choice([None, rng.randint(1, 5000)]),
            created_at=NOW - dt.timedelta(seconds=rng.randint(-300, 7200)),
        )


KINDS = [
    ("failure_rate", [0.1, 0.3, 0.5]),
    ("failure_count", [1, 5, 20]),
    ("latency_p95", [1000, 4500, 4900]),
    ("silence", [0]),
]


@pytest.mark.parametrize("kind,thresholds", KINDS)
def test_every_call_kind_agrees_with_the_oracle(random_calls, kind, thresholds):
    rules = []
    for threshold, site, app, window, min_calls in itertools.product(
        thresholds, [None, 1, 2], ["", "app1_chat", "app9_never"], [5, 15, 60], [0, 10, 40]
    ):
        if kind == "silence" and not app:
            continue
        rules.append(
            rule(
                kind=kind,
                threshold=threshold,
                site_id=site,
                app_type=app,
                window_minutes=window,
                min_calls=min_calls,
            )
        )
    result = found(rules)
    for each in rules:
        expected = oracle(each, NOW)
        assert result[each.pk].keys() == expected.keys(), each.__dict__
        for key, value in expected.items():
            assert result[each.pk][key] == pytest.approx(value), (each.__dict__, key)
    # The data set makes every kind fire somewhere and stay quiet somewhere.
    assert any(result.values()) and not all(result.values())


def test_window_edges_min_calls_and_null_latency(db):
    window = dt.timedelta(minutes=10)
    make_run(status="failed", created_at=NOW - window)  # on the window's start: inside
    make_run(status="failed", created_at=NOW)  # at "now": outside (the window is [a, b))
    make_run(status="failed", created_at=NOW - window - dt.timedelta(microseconds=1))
    make_run(status="success", latency_ms=None, created_at=NOW - dt.timedelta(minutes=1))
    count = rule(kind="failure_count", threshold=1, window_minutes=10)
    rate = rule(kind="failure_rate", threshold=0.5, window_minutes=10, min_calls=2)
    strict = rule(kind="failure_rate", threshold=0.5, window_minutes=10, min_calls=3)
    p95 = rule(kind="latency_p95", threshold=400, window_minutes=10, min_calls=1)
    result = found([count, rate, strict, p95])
    key = key_for(None, "app1_chat")
    assert result[count.pk] == {key: 1.0}
    assert result[rate.pk] == {key: 0.5}  # 1 failure of 2 calls; min_calls 2 met
    assert result[strict.pk] == {}  # min_calls 3 not met
    assert result[p95.pk] == {key: 500}  # only the non-null latency counts
    assert all(result[r.pk] == oracle(r, NOW) for r in (count, rate, strict, p95))


def test_p95_with_only_null_latencies_does_not_fire(db):
    for _ in range(3):
        make_run(latency_ms=None, created_at=NOW - dt.timedelta(minutes=1))
    p95 = rule(kind="latency_p95", threshold=1, min_calls=1)
    assert found([p95])[p95.pk] == {}


def test_stuck_jobs_agree_with_the_oracle(db):
    for site, minutes, status in [
        (1, 30, "pending"),
        (1, 30, "running"),
        (2, 90, "pending"),
        (2, 5, "pending"),
        (1, 120, "pending"),
    ]:
        make_job(site_id=site, status=status, created_at=NOW - dt.timedelta(minutes=minutes))
    rules = [
        rule(kind="stuck_jobs", threshold=t, site_id=s, window_minutes=w)
        for t, s, w in itertools.product([1, 2, 3], [None, 1, 2], [15, 60])
    ]
    result = found(rules)
    for each in rules:
        assert result[each.pk] == oracle(each, NOW), each.__dict__


@override_settings(DAILY_TOKEN_LIMIT=1000)
def test_budget_is_todays_successful_tokens_over_every_site(db):
    from aimonitor.figures.calls import budget

    now = timezone.now()
    make_run(site_id=1, tokens_used=500, status="success", created_at=now)
    make_run(site_id=7, tokens_used=300, status="success", created_at=now)
    make_run(site_id=1, tokens_used=900, status="failed", created_at=now)  # not counted
    fires, quiet = rule(kind="budget", threshold=0.8), rule(kind="budget", threshold=0.81)
    result = found([fires, quiet], now)
    assert result[fires.pk] == {key_for(None, ""): 0.8}
    assert result[quiet.pk] == {}
    assert budget()["daily_pct"] == 0.8


def test_one_statement_per_source_whatever_the_number_of_rules(
    random_calls, django_assert_max_num_queries
):
    rules = [
        rule(kind="failure_rate", window_minutes=w, site_id=s)
        for w in (5, 10, 30)
        for s in (None, 1)
    ]
    rules += [rule(kind="stuck_jobs", threshold=1, window_minutes=w) for w in (5, 10)]
    with django_assert_max_num_queries(2):
        evaluate(rules, NOW)


@pytest.fixture
def hours_of_calls(db, settings):
    """Calls over the last 26 hours, summed into the rollups, plus a few raw ones after."""
    from aimonitor import summaries

    settings.ROLLUP_LAG_SECONDS = 0
    rng = random.Random(23)
    statuses = ["success"] * 6 + ["failed", "timeout", "circuit_open", "running"]
    now = timezone.now()
    for _ in range(600):
        make_run(
            site_id=rng.choice([1, 2]),
            app_type=rng.choice(["app1_chat", "app2_summary", "app3_clue"]),
            status=rng.choice(statuses),
            latency_ms=rng.choice([None, rng.randint(1, 5000)]),
            created_at=now - dt.timedelta(seconds=rng.randint(0, 26 * 3600)),
        )
    summaries.refresh(now=now)
    state = summaries.refresh(now=now)
    assert state.covered_until is not None and state.max_id > 0
    # Late arrivals: created in summed hours after the refresh (read raw by id).
    for _ in range(20):
        make_run(
            site_id=1,
            status="failed",
            created_at=now - dt.timedelta(minutes=rng.randint(90, 600)),
        )
    return now


@pytest.mark.parametrize("kind,thresholds", KINDS)
def test_long_windows_read_from_the_rollups_agree_with_the_oracle(hours_of_calls, kind, thresholds):
    now = hours_of_calls
    rules = []
    for threshold, site, app, window in itertools.product(
        thresholds, [None, 1, 2], ["", "app1_chat", "app9_never"], [90, 360, 1440]
    ):
        if kind == "silence" and not app:
            continue
        rules.append(
            rule(
                kind=kind,
                threshold=threshold,
                site_id=site,
                app_type=app,
                window_minutes=window,
                min_calls=10,
            )
        )
    result = found(rules, now)
    for each in rules:
        expected = oracle(each, now)
        assert result[each.pk].keys() == expected.keys(), each.__dict__
        for key, value in expected.items():
            assert result[each.pk][key] == pytest.approx(value), (each.__dict__, key)


def test_long_windows_read_the_rollups_not_every_call(
    hours_of_calls, django_assert_max_num_queries
):
    """The calls of a day-long window come from the rollups' rows (one statement per
    window), its failures from the partial index: no statement reads every call."""
    from django.db import connection as conn
    from django.test.utils import CaptureQueriesContext

    rules = [
        rule(kind="failure_rate", window_minutes=1440),
        rule(kind="failure_count", threshold=1, window_minutes=360),
    ]
    with CaptureQueriesContext(conn) as captured:
        evaluate(rules, hours_of_calls)
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert "aimonitor_runrollup" in sql
    assert len(captured) <= 4  # the refresh, one sum per window, the failures
