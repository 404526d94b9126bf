"""``/metrics`` for Prometheus (SPEC.md §10): the console's figures in the text format.

Guarded by a bearer token (AIMONITOR_METRICS_TOKEN; unset, the path is not served: 404;
a missing or wrong token: 401). A custom collector computes the figures at each scrape
from the same sources as the dashboard: today's calls and tokens per site and app from
the hourly rollups (``summaries.sums``), the budget from ``aimonitor.figures.calls.budget``, the
rest in a few indexed queries (the last 5 minutes of calls, today's failures through
the partial alerts index, jobs by status, open incidents).
"""

from __future__ import annotations

import datetime as dt
import hmac

from django.conf import settings
from django.db import connection
from django.http import Http404, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from aimonitor import summaries
from aimonitor.figures.calls import budget
from aimonitor.localtime import local_day_bounds, local_today
from aimonitor.models import ALERT_STATUSES, RunLog, TriggerJob
from aimonitor.scope import Scope
from alerts.models import Incident

RECENT = dt.timedelta(minutes=5)


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _rows(sql: str, params: dict) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def call_figures(now: dt.datetime) -> dict:
    """``{(window, site, app): {calls, failures, tokens}}`` for "5m" and "today"."""
    today = local_day_bounds(local_today())
    figures: dict = {}
    for key, row in summaries.sums(Scope.everything(), {"today": today}, by="site_app").items():
        site, app = key.split(" ", 1)
        figures[("today", site, app)] = {
            "calls": row["calls"],
            "failures": 0,
            "tokens": row["tokens"],
        }
    # Failures are few: the partial index on failed calls serves today's.
    for site, app, failures in _rows(
        f"""SELECT site_id, app_type, count(*) FROM {_table(RunLog)}
            WHERE status = ANY(%(failures)s) AND created_at >= %(a)s AND created_at < %(b)s
            GROUP BY 1, 2""",
        {"failures": list(ALERT_STATUSES), "a": today[0], "b": today[1]},
    ):
        figures.setdefault(("today", str(site), app), {"calls": 0, "failures": 0, "tokens": 0})
        figures[("today", str(site), app)]["failures"] = failures
    for site, app, calls, failures, tokens in _rows(
        f"""SELECT site_id, app_type, count(*), count(*) FILTER (WHERE status = ANY(%(failures)s)),
                   coalesce(sum(tokens_used), 0)
            FROM {_table(RunLog)} WHERE created_at >= %(a)s AND created_at < %(b)s GROUP BY 1, 2""",
        {"failures": list(ALERT_STATUSES), "a": now - RECENT, "b": now},
    ):
        figures[("5m", str(site), app)] = {"calls": calls, "failures": failures, "tokens": tokens}
    return figures


def recent_p95(now: dt.datetime) -> dict[str, float]:
    """p95 latency (ms) per app type over the last 5 minutes (non-null latencies)."""
    return dict(
        _rows(
            f"""SELECT app_type, percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)
                FROM {_table(RunLog)} WHERE created_at >= %(a)s AND created_at < %(b)s
                AND latency_ms IS NOT NULL GROUP BY 1""",
            {"a": now - RECENT, "b": now},
        )
    )


def job_figures(now: dt.datetime) -> tuple[dict[str, int], int]:
    """(today's jobs by status, jobs pending longer than AIMONITOR_STUCK_MINUTES)."""
    today = local_day_bounds(local_today())
    by_status = dict(
        _rows(
            f"""SELECT status, count(*) FROM {_table(TriggerJob)}
                WHERE created_at >= %(a)s AND created_at < %(b)s GROUP BY 1""",
            {"a": today[0], "b": today[1]},
        )
    )
    stuck_minutes = getattr(settings, "STUCK_MINUTES", 15)
    stuck = _rows(
        f"""SELECT count(*) FROM {_table(TriggerJob)}
            WHERE status = 'pending' AND created_at < %(before)s""",
        {"before": now - dt.timedelta(minutes=stuck_minutes)},
    )[0][0]
    return by_status, stuck


class ConsoleCollector:
    """Every figure, computed at scrape time."""

    def collect(self):
        now = timezone.now()
        labels = ["window", "site", "app_type"]
        calls = GaugeMetricFamily("aimonitor_calls", "Model calls", labels=labels)
        failures = GaugeMetricFamily(
            "aimonitor_failures", "Calls failed, timed out or circuit-open", labels=labels
        )
        tokens = GaugeMetricFamily("aimonitor_tokens", "Tokens used (every status)", labels=labels)
        for (window, site, app), row in sorted(call_figures(now).items()):
            calls.add_metric([window, site, app], row["calls"])
            failures.add_metric([window, site, app], row["failures"])
            tokens.add_metric([window, site, app], row["tokens"])
        yield from (calls, failures, tokens)

        p95 = GaugeMetricFamily(
            "aimonitor_latency_p95_ms", "p95 latency over the last 5 minutes", labels=["app_type"]
        )
        for app, value in sorted(recent_p95(now).items()):
            p95.add_metric([app], value)
        yield p95

        figures = budget()
        for period in ("daily", "monthly"):
            used = GaugeMetricFamily(
                f"aimonitor_budget_{period}_used_tokens",
                f"Tokens of successful calls, {period} (every site)",
            )
            used.add_metric([], figures[f"{period}_used"])
            limit = GaugeMetricFamily(f"aimonitor_budget_{period}_limit_tokens", f"{period} limit")
            limit.add_metric([], figures[f"{period}_limit"])
            yield used
            yield limit

        by_status, stuck = job_figures(now)
        jobs = GaugeMetricFamily(
            "aimonitor_jobs_today", "Trigger jobs created today", labels=["status"]
        )
        for status, count in sorted(by_status.items()):
            jobs.add_metric([status], count)
        yield jobs
        stuck_jobs = GaugeMetricFamily(
            "aimonitor_jobs_stuck", "Jobs pending longer than AIMONITOR_STUCK_MINUTES"
        )
        stuck_jobs.add_metric([], stuck)
        yield stuck_jobs

        incidents = GaugeMetricFamily(
            "aimonitor_open_incidents", "Open incidents", labels=["rule", "kind"]
        )
        counts: dict[tuple[str, str], int] = {}
        for name, kind in Incident.objects.open().values_list("rule__name", "rule__kind"):
            counts[(name, kind)] = counts.get((name, kind), 0) + 1
        for (name, kind), count in sorted(counts.items()):
            incidents.add_metric([name, kind], count)
        yield incidents


def authorized(request) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        token.strip().encode(), settings.METRICS_TOKEN.encode()
    )


@require_GET
def metrics(request):
    """The figures in Prometheus' text format, for the bearer of AIMONITOR_METRICS_TOKEN."""
    if not settings.METRICS_TOKEN:
        raise Http404("Metrics are not enabled.")
    if not authorized(request):
        response = HttpResponse("Unauthorized\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="aimonitor-metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ConsoleCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
