"""The figures over the calls (SPEC.md §4, §8): one plain function per dashboard panel.

Each takes the ``Scope`` to count (the user's sites, narrowed to the chosen site; the
budget alone is global) and returns plain data: dicts and lists of numbers, strings and
datetimes. The HTML panels and ``/dashboard.json`` both render these results, so
they cannot disagree. Every figure is aggregated in PostgreSQL in a fixed number of
queries; "today" and every day boundary are local days in AIMONITOR_TIME_ZONE.

The figures over days (today, the trend, the distribution, the budget) read the
hourly rollups of ``aimonitor.summaries`` for closed hours and the raw calls only for
the rest, so they cost the same at ten million calls as at ten thousand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from aimonitor import pricing, summaries
from aimonitor.db_router import reading
from aimonitor.localtime import local_day_bounds, local_month_bounds, local_today
from aimonitor.models import RunLog
from aimonitor.scope import Scope
from aimonitor.sqlfiles import sql_beside

TREND_DAYS = 7
RECENT_ALERTS = 10
ALERT_FIELDS = (
    "id",
    "app_type",
    "status",
    "alert_status",
    "error_message",
    "created_at",
    "site_id",
    "member_id",
)


def ratio(part, whole) -> float:
    """``part / whole`` to 4 decimals, 0 when there is nothing to divide by."""
    return round(part / whole, 4) if whole else 0.0


def milliseconds(value) -> float:
    """A latency to 2 decimals, 0 when there is none."""
    return round(float(value), 2) if value is not None else 0.0


NO_CALLS = dict.fromkeys(summaries.SUMS, 0)


def today(scope: Scope) -> dict:
    """Today's calls, success rate, tokens and latencies, and the same hours yesterday.

    "The same hours yesterday" runs from yesterday's local midnight to this
    moment 24 hours ago, so the comparison is fair at any time of day. p95 comes
    from the rollups' latency buckets (``aimonitor.summaries.percentile``).
    """
    day = local_today()
    windows = {
        "t": local_day_bounds(day),
        "y": (
            local_day_bounds(day - dt.timedelta(days=1))[0],
            timezone.now() - dt.timedelta(hours=24),
        ),
    }
    sums, p95 = summaries.sums_and_percentiles(scope, windows, 0.95)

    def summary(window: str) -> dict:
        row = sums.get(window, NO_CALLS)
        return {
            "calls": row["calls"],
            "success_rate": ratio(row["successes"], row["calls"]),
            "tokens": int(row["tokens"]),
            "avg_latency_ms": milliseconds(
                summaries.mean(row["latency_sum"], row["latency_count"])
            ),
            "p95_latency_ms": milliseconds(p95[window]),
        }

    now, before = summary("t"), summary("y")
    result = {
        **{f"today_{name}": value for name, value in now.items()},
        "same_hours_yesterday": before,
        "change_vs_yesterday": {
            "calls": now["calls"] - before["calls"],
            "success_rate": round(now["success_rate"] - before["success_rate"], 4),
            "tokens": now["tokens"] - before["tokens"],
            "avg_latency_ms": round(now["avg_latency_ms"] - before["avg_latency_ms"], 2),
            "p95_latency_ms": round(now["p95_latency_ms"] - before["p95_latency_ms"], 2),
        },
    }
    if settings.TOKEN_PRICE_PER_1K is not None:
        result["today_cost"] = token_cost(now["tokens"])
    return result


def trend_days() -> list[dt.date]:
    """The trend's local days, oldest first: today−6 … today."""
    day = local_today()
    return [day - dt.timedelta(days=back) for back in range(TREND_DAYS - 1, -1, -1)]


def trend_window() -> tuple[dt.datetime, dt.datetime]:
    """The start of today−6 and the end of today."""
    days = trend_days()
    return local_day_bounds(days[0])[0], local_day_bounds(days[-1])[1]


def trend_7d(scope: Scope) -> list[dict]:
    """Calls and success rate per local day, today−6 … today; a day without calls is 0."""
    counted = summaries.sums(scope, {"trend": trend_window()}, by="day")
    trend = []
    for day in trend_days():
        row = counted.get(day, NO_CALLS)
        trend.append(
            {
                "date": day.isoformat(),
                "calls": row["calls"],
                "success_rate": ratio(row["successes"], row["calls"]),
            }
        )
    return trend


def app_distribution(scope: Scope) -> list[dict]:
    """Calls per app type over the trend's seven days, largest first, with its share."""
    per_app = summaries.sums(scope, {"trend": trend_window()}, by="app")
    # One entry per app type (a handful), ordered like ORDER BY count DESC, app_type.
    counts = sorted(
        ((row["calls"], app) for app, row in per_app.items() if row["calls"]),
        key=lambda item: (-item[0], item[1]),
    )
    total = sum(count for count, _ in counts)
    return [
        {"app_type": app, "count": count, "percentage": ratio(count, total)}
        for count, app in counts
    ]


# A loose index scan: one index probe per distinct app type (per site), then the
# newest row of each by a backward probe of the same index, instead of reading
# every row the scope has ever had. Needs the (app_type, created_at) and
# (site_id, app_type, created_at) indexes of aimonitor/ai_tables.sql; the newest
# row is ordered by created_at alone so that those indexes serve it exactly (an
# extra id tie-break makes PostgreSQL walk the (created_at, id) index instead,
# which is slow for an app last seen weeks ago).
APP_HEALTH_ALL_SITES = sql_beside(__file__, "app_health_all_sites.sql")

APP_HEALTH_SITES = sql_beside(__file__, "app_health_sites.sql")


def app_health(scope: Scope) -> list[dict]:
    """Per app type ever seen in scope: the status and time of its newest call.

    In raw SQL (the ORM cannot write a recursive CTE): every site, or exactly the
    scope's sites (passed as a query parameter).
    """
    connection = reading(RunLog)
    table = connection.ops.quote_name(RunLog._meta.db_table)
    if scope.is_all_sites:
        sql, params = APP_HEALTH_ALL_SITES.format(table=table), []
    else:
        sql, params = APP_HEALTH_SITES.format(table=table), [scope.site_id_list]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        {"app_type": app_type, "last_status": status, "last_call_at": created_at}
        for app_type, status, created_at in rows
    ]


def budget() -> dict:
    """Tokens of successful calls today and this local month against the limits.

    Every site's calls: the budget is the whole business's (SPEC.md §4).
    """
    day = local_today()
    used = summaries.sums(
        Scope.everything(),
        {"daily": local_day_bounds(day), "monthly": local_month_bounds(day)},
    )
    used = {window: used.get(window, NO_CALLS)["success_tokens"] for window in ("daily", "monthly")}
    daily_limit, monthly_limit = settings.DAILY_TOKEN_LIMIT, settings.MONTHLY_TOKEN_LIMIT
    figures = {
        "daily_used": int(used["daily"]),
        "daily_limit": daily_limit,
        "daily_pct": ratio(used["daily"], daily_limit),
        "monthly_used": int(used["monthly"]),
        "monthly_limit": monthly_limit,
        "monthly_pct": ratio(used["monthly"], monthly_limit),
    }
    if settings.TOKEN_PRICE_PER_1K is not None:
        figures["daily_cost"] = token_cost(figures["daily_used"])
        figures["monthly_cost"] = token_cost(figures["monthly_used"])
    return figures


def token_cost(tokens: int) -> float:
    """What ``tokens`` cost at AIMONITOR_TOKEN_PRICE_PER_1K (set), to 4 decimals."""
    return round(float(Decimal(tokens) * Decimal(settings.TOKEN_PRICE_PER_1K) / 1000), 4)


def recent_alerts(scope: Scope) -> list[dict]:
    """The newest pending alerts (alert_status NULL or 'pending'), newest first."""
    runs = RunLog.objects.visible_to(scope)
    return list(runs.pending_alerts().newest_first().values(*ALERT_FIELDS)[:RECENT_ALERTS])


# --- The chosen time range (SPEC.md §8) ----------------------------------------------

# The newest call and the newest failure of each app in the window: two backward
# probes per app of the (app_type, created_at) / (site_id, app_type, created_at)
# indexes, for the handful of apps the window's sums found.
APP_LAST_CALLS = sql_beside(__file__, "app_last_calls.sql")


def range_figures(scope: Scope, window) -> dict:
    """``{"range": totals, "apps": [per app]}`` for the calls created in ``window``.

    Sums and latencies come from the rollups for closed hours and the raw calls for
    the edges (``aimonitor.summaries``); counts, sums and means are exact, p95 is within
    2 %. Apps: most failures first, then most calls, then by name.
    """
    bounds = (window.since, window.until)
    per_app, app_p95, total, p95 = summaries.apps_in_window(scope, bounds, 0.95)
    prices = pricing.price_list()
    apps = {app: row for app, row in per_app.items() if row["calls"]}
    last = _last_calls(scope, window, sorted(apps))
    summary = {
        "since": window.since,
        "until": window.until,
        "calls": total["calls"],
        "failures": total["failures"],
        "success_rate": ratio(total["successes"], total["calls"]),
        "tokens": int(total["tokens"]),
        "avg_latency_ms": milliseconds(
            summaries.mean(total["latency_sum"], total["latency_count"])
        ),
        "p95_latency_ms": milliseconds(p95),
        "cost": pricing.total_cost({a: r["tokens"] for a, r in apps.items()}, prices),
    }
    table = []
    for app, sums in apps.items():
        status, last_call_at, last_failure_at = last.get(app, (None, None, None))
        table.append(
            {
                "app_type": app,
                "calls": sums["calls"],
                "failures": sums["failures"],
                "failure_rate": ratio(sums["failures"], sums["calls"]),
                "avg_latency_ms": milliseconds(
                    summaries.mean(sums["latency_sum"], sums["latency_count"])
                ),
                "p95_latency_ms": milliseconds(app_p95.get(app)),
                "tokens": int(sums["tokens"]),
                "cost": pricing.cost(sums["tokens"], pricing.price_of(app, prices)),
                "last_status": status,
                "last_call_at": last_call_at,
                "last_failure_at": last_failure_at,
            }
        )
    table.sort(key=lambda app: (-app["failures"], -app["calls"], app["app_type"]))
    return {"range": summary, "apps": table}


def _last_calls(scope: Scope, window, apps: list[str]) -> dict[str, tuple]:
    """``{app_type: (last status, last call at, last failure at)}`` within the window."""
    if not apps:
        return {}
    connection = reading(RunLog)
    table = connection.ops.quote_name(RunLog._meta.db_table)
    where = "" if scope.is_all_sites else "AND r.site_id = ANY(%(sites)s)"
    params = {
        "apps": apps,
        "since": window.since,
        "until": window.until,
        "sites": scope.site_id_list,
    }
    with connection.cursor() as cursor:
        cursor.execute(APP_LAST_CALLS.format(table=table, scope=where), params)
        return {app: (status, at, failed_at) for app, status, at, failed_at in cursor.fetchall()}
