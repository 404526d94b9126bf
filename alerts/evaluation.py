"""Rule evaluation (SPEC.md §10): which (rule, key) pairs fire now, and at what value.

Every enabled rule is evaluated by a fixed number of statements whatever the number of
rules: one over the calls for every call-based rule (failure rate, failure count, p95
latency, silence), one over the jobs for every stuck-jobs rule, and the dashboard's own
budget figure. The definitions are the dashboard's: failures are calls with status
``failed``, ``timeout`` or ``circuit_open`` (``RunLog.objects.alerts()``); p95 is
``percentile_cont(0.95)`` of the non-null latencies; the budget is today's tokens of
successful calls over every site (``aimonitor.figures.calls.budget``, read from the hourly
rollups).

How the calls are read: a window of up to an hour (``RAW_WINDOW_MINUTES``) is read raw,
exactly — one range scan of the ``(created_at, id)`` index, once for all such rules (the
longest window), each call counted into every window that holds it; at ten million
calls over 30 days an hour is ~14,000 rows (``make bench``). A longer window (up to a
day, ``MAX_WINDOW_MINUTES``) reads the dashboard's hourly rollups for its closed hours
and the raw calls for the rest (``summaries.sums``, the same split as the dashboard's
figures), and its failures through the partial index on failed calls (the rollups hold
no failure count; failures are a small fraction of calls). p95 latency is always read
raw: the latency rollups have no app type.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass

from django.db import connection
from django.utils import timezone

from aimonitor import summaries
from aimonitor.figures.calls import budget
from aimonitor.models import ALERT_STATUSES, RunLog, TriggerJob
from aimonitor.scope import Scope
from alerts.models import AlertRule

CALL_KINDS = (
    AlertRule.Kind.FAILURE_RATE,
    AlertRule.Kind.FAILURE_COUNT,
    AlertRule.Kind.LATENCY_P95,
    AlertRule.Kind.SILENCE,
)
EVERY_SITE = "*"
# Windows up to this long are read raw; longer ones from the rollups (closed hours).
RAW_WINDOW_MINUTES = 60


@dataclass(frozen=True)
class Finding:
    """One thing a rule is about (a site and/or app type) that fires now."""

    key: str
    site_id: int | None
    app_type: str
    value: float


def key_for(site_id: int | None, app_type: str) -> str:
    return f"site={EVERY_SITE if site_id is None else site_id};app={app_type or EVERY_SITE}"


CALLS_SQL = """
WITH windows (minutes) AS (SELECT unnest(%(windows)s::int[]))
SELECT w.minutes, r.site_id, r.app_type, GROUPING(r.site_id) = 1 AS every_site,
       count(*) AS calls,
       count(*) FILTER (WHERE r.status = ANY(%(failures)s)) AS failures,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY r.latency_ms) AS p95
FROM {runs} r
JOIN windows w ON r.created_at >= %(now)s - make_interval(mins => w.minutes)
WHERE r.created_at >= %(since)s AND r.created_at < %(now)s
GROUP BY GROUPING SETS ((w.minutes, r.site_id, r.app_type), (w.minutes, r.app_type))
HAVING GROUPING(r.site_id) = 1 OR r.site_id = ANY(%(sites)s)
"""

FAILURES_SQL = """
WITH windows (minutes) AS (SELECT unnest(%(windows)s::int[]))
SELECT w.minutes, r.site_id, r.app_type, GROUPING(r.site_id) = 1 AS every_site, count(*)
FROM {runs} r
JOIN windows w ON r.created_at >= %(now)s - make_interval(mins => w.minutes)
WHERE r.status = ANY(%(failures)s) AND r.created_at >= %(since)s AND r.created_at < %(now)s
GROUP BY GROUPING SETS ((w.minutes, r.site_id, r.app_type), (w.minutes, r.app_type))
HAVING GROUPING(r.site_id) = 1 OR r.site_id = ANY(%(sites)s)
"""

STUCK_SQL = """
WITH windows (minutes) AS (SELECT unnest(%(windows)s::int[]))
SELECT w.minutes, j.site_id, GROUPING(j.site_id) = 1 AS every_site, count(*)
FROM {jobs} j
JOIN windows w ON j.created_at < %(now)s - make_interval(mins => w.minutes)
WHERE j.status = 'pending' AND j.created_at < %(now)s - make_interval(mins => %(shortest)s)
GROUP BY GROUPING SETS ((w.minutes, j.site_id), (w.minutes))
HAVING GROUPING(j.site_id) = 1 OR j.site_id = ANY(%(sites)s)
"""


@dataclass(frozen=True)
class Calls:
    calls: int
    failures: int
    p95: float | None


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def call_figures(rules, now: dt.datetime) -> dict[tuple[int, int | None], dict[str, Calls]]:
    """``{(window, site or None): {app_type: Calls}}`` for the windows and sites of ``rules``."""
    windows = sorted({rule.window_minutes for rule in rules})
    if not windows:
        return {}
    sites = sorted({rule.site_id for rule in rules if rule.site_id is not None})
    with connection.cursor() as cursor:
        cursor.execute(
            CALLS_SQL.format(runs=_table(RunLog)),
            {
                "windows": windows,
                "failures": list(ALERT_STATUSES),
                "now": now,
                "since": now - dt.timedelta(minutes=windows[-1]),
                "sites": sites,
            },
        )
        rows = cursor.fetchall()
    figures: dict[tuple[int, int | None], dict[str, Calls]] = defaultdict(dict)
    for minutes, site_id, app_type, every_site, calls, failures, p95 in rows:
        scope = (minutes, None if every_site else site_id)
        figures[scope][app_type] = Calls(calls, failures, p95)
    return figures


def summed_call_figures(rules, now: dt.datetime) -> dict[tuple[int, int | None], dict[str, Calls]]:
    """Like ``call_figures`` (without p95), for long windows: calls from the rollups'
    closed hours plus the raw rest, failures through the partial index of failed calls."""
    windows = sorted({rule.window_minutes for rule in rules})
    if not windows:
        return {}
    sites = sorted({rule.site_id for rule in rules if rule.site_id is not None})
    calls: dict[tuple[int, int | None], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    with summaries.refreshed():  # one refresh for every window
        for minutes in windows:
            since = now - dt.timedelta(minutes=minutes)
            for key, row in summaries.sums(
                Scope.everything(), {"w": (since, now)}, by="site_app"
            ).items():
                site, app = key.split(" ", 1)
                calls[(minutes, None)][app] += row["calls"]
                if int(site) in sites:
                    calls[(minutes, int(site))][app] += row["calls"]
    with connection.cursor() as cursor:
        cursor.execute(
            FAILURES_SQL.format(runs=_table(RunLog)),
            {
                "windows": windows,
                "failures": list(ALERT_STATUSES),
                "now": now,
                "since": now - dt.timedelta(minutes=windows[-1]),
                "sites": sites,
            },
        )
        failures = {
            (minutes, None if every_site else site_id, app_type): count
            for minutes, site_id, app_type, every_site, count in cursor.fetchall()
        }
    return {
        scope: {
            app: Calls(count, failures.get((*scope, app), 0), None)
            for app, count in per_app.items()
            if count
        }
        for scope, per_app in calls.items()
    }


def stuck_figures(rules, now: dt.datetime) -> dict[tuple[int, int | None], int]:
    """``{(window, site or None): jobs pending for longer than window}``."""
    windows = sorted({rule.window_minutes for rule in rules})
    if not windows:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            STUCK_SQL.format(jobs=_table(TriggerJob)),
            {
                "windows": windows,
                "shortest": windows[0],
                "now": now,
                "sites": sorted({r.site_id for r in rules if r.site_id is not None}),
            },
        )
        rows = cursor.fetchall()
    return {(minutes, None if every else site): count for minutes, site, every, count in rows}


def _call_findings(rule: AlertRule, per_app: dict[str, Calls]) -> list[Finding]:
    if rule.kind == AlertRule.Kind.SILENCE:
        calls = per_app.get(rule.app_type)
        if calls is None or calls.calls == 0:
            return [Finding(key_for(rule.site_id, rule.app_type), rule.site_id, rule.app_type, 0)]
        return []
    apps = [rule.app_type] if rule.app_type else sorted(per_app)
    findings = []
    for app in apps:
        figures = per_app.get(app)
        if figures is None:
            continue
        value = _value(rule, figures)
        if value is not None and value >= rule.threshold:
            findings.append(Finding(key_for(rule.site_id, app), rule.site_id, app, value))
    return findings


def _value(rule: AlertRule, figures: Calls) -> float | None:
    """The rule's figure for one app, or None when there are too few calls to judge."""
    if rule.kind == AlertRule.Kind.FAILURE_COUNT:
        return float(figures.failures)
    if figures.calls < rule.min_calls or figures.calls == 0:
        return None
    if rule.kind == AlertRule.Kind.FAILURE_RATE:
        return figures.failures / figures.calls
    return figures.p95  # latency_p95; None when no call had a latency


def budget_fraction() -> float:
    """Today's success-only tokens over every site / the daily limit (the dashboard's)."""
    figures = budget()
    return figures["daily_used"] / figures["daily_limit"] if figures["daily_limit"] else 0.0


def evaluate(rules, now: dt.datetime | None = None) -> dict[int, list[Finding]]:
    """``{rule id: the findings that fire now}`` for every rule given (each evaluated)."""
    now = now or timezone.now()
    rules = list(rules)
    call_rules = [rule for rule in rules if rule.kind in CALL_KINDS]
    stuck_rules = [rule for rule in rules if rule.kind == AlertRule.Kind.STUCK_JOBS]
    # p95 has no rollup by app type: latency rules are read raw whatever their window.
    raw_rules = [
        rule
        for rule in call_rules
        if rule.window_minutes <= RAW_WINDOW_MINUTES or rule.kind == AlertRule.Kind.LATENCY_P95
    ]
    summed_rules = [rule for rule in call_rules if rule not in raw_rules]
    calls = call_figures(raw_rules, now)
    summed = summed_call_figures(summed_rules, now)
    stuck = stuck_figures(stuck_rules, now)
    budget = None
    result: dict[int, list[Finding]] = {}
    for rule in rules:
        if rule.kind in CALL_KINDS:
            source = calls if rule in raw_rules else summed
            findings = _call_findings(rule, source.get((rule.window_minutes, rule.site_id), {}))
        elif rule.kind == AlertRule.Kind.STUCK_JOBS:
            count = stuck.get((rule.window_minutes, rule.site_id), 0)
            findings = (
                [Finding(key_for(rule.site_id, ""), rule.site_id, "", float(count))]
                if count >= rule.threshold
                else []
            )
        else:  # budget
            budget = budget_fraction() if budget is None else budget
            findings = (
                [Finding(key_for(None, ""), None, "", round(budget, 4))]
                if budget >= rule.threshold
                else []
            )
        result[rule.pk] = findings
    return result
