"""The dashboard's figures (SPEC.md §4), one plain function per panel.

Each takes an already scoped ``RunLog`` queryset (the user's rows, narrowed to
the chosen site) and returns plain data: dicts and lists of numbers, strings and
datetimes. The HTML panels and ``/dashboard.json`` both render these results, so
they cannot disagree. Every figure is aggregated in PostgreSQL in a fixed number of
queries; "today" and every day boundary are local days in AIMONITOR_TIME_ZONE.

The figures over days (today, the trend, the distribution, the budget) read the
hourly rollups of ``aimonitor.rollup`` for closed hours and the raw calls only for
the rest, so they cost the same at ten million calls as at ten thousand.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.conf import settings
from django.utils import timezone

from aimonitor import pricing, rollup
from aimonitor.db_router import reading
from aimonitor.localtime import local_day_bounds, local_month_bounds, local_today
from aimonitor.models import RunLog

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


NO_CALLS = dict.fromkeys(rollup.SUMS, 0)


def today(runs) -> dict:
    """Today's calls, success rate, tokens and latencies, and the same hours yesterday.

    "The same hours yesterday" runs from yesterday's local midnight to this
    moment 24 hours ago, so the comparison is fair at any time of day. p95 comes
    from the rollups' latency buckets (``aimonitor.rollup.percentile``).
    """
    day = local_today()
    windows = {
        "t": local_day_bounds(day),
        "y": (
            local_day_bounds(day - dt.timedelta(days=1))[0],
            timezone.now() - dt.timedelta(hours=24),
        ),
    }
    sums, p95 = rollup.sums_and_percentiles(rollup.site_scope(runs), windows, 0.95)

    def summary(window: str) -> dict:
        row = sums.get(window, NO_CALLS)
        return {
            "calls": row["calls"],
            "success_rate": ratio(row["successes"], row["calls"]),
            "tokens": int(row["tokens"]),
            "avg_latency_ms": milliseconds(rollup.mean(row["latency_sum"], row["latency_count"])),
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


def trend_7d(runs) -> list[dict]:
    """Calls and success rate per local day, today−6 … today; a day without calls is 0."""
    counted = rollup.sums(rollup.site_scope(runs), {"trend": trend_window()}, by="day")
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


def app_distribution(runs) -> list[dict]:
    """Calls per app type over the trend's seven days, largest first, with its share."""
    per_app = rollup.sums(rollup.site_scope(runs), {"trend": trend_window()}, by="app")
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
APP_HEALTH_ALL_SITES = """
WITH RECURSIVE apps(app_type) AS (
    (SELECT app_type FROM {table} ORDER BY app_type LIMIT 1)
    UNION ALL
    SELECT (SELECT r.app_type FROM {table} r WHERE r.app_type > apps.app_type
            ORDER BY r.app_type LIMIT 1)
    FROM apps WHERE apps.app_type IS NOT NULL
)
SELECT newest.app_type, newest.status, newest.created_at
FROM apps
CROSS JOIN LATERAL (
    SELECT r.app_type, r.status, r.created_at FROM {table} r
    WHERE r.app_type = apps.app_type
    ORDER BY r.created_at DESC LIMIT 1
) newest
WHERE apps.app_type IS NOT NULL
ORDER BY newest.app_type
"""

APP_HEALTH_SITES = """
WITH RECURSIVE pairs(site_id, app_type) AS (
    SELECT sites.site_id,
           (SELECT r.app_type FROM {table} r WHERE r.site_id = sites.site_id
            ORDER BY r.app_type LIMIT 1)
    FROM unnest(%s::bigint[]) AS sites(site_id)
    UNION ALL
    SELECT pairs.site_id,
           (SELECT r.app_type FROM {table} r
            WHERE r.site_id = pairs.site_id AND r.app_type > pairs.app_type
            ORDER BY r.app_type LIMIT 1)
    FROM pairs WHERE pairs.app_type IS NOT NULL
)
SELECT DISTINCT ON (newest.app_type) newest.app_type, newest.status, newest.created_at
FROM pairs
CROSS JOIN LATERAL (
    SELECT r.app_type, r.status, r.created_at, r.id FROM {table} r
    WHERE r.site_id = pairs.site_id AND r.app_type = pairs.app_type
    ORDER BY r.created_at DESC LIMIT 1
) newest
WHERE pairs.app_type IS NOT NULL
ORDER BY newest.app_type, newest.created_at DESC, newest.id DESC
"""


def app_health(site_ids: list[int] | None) -> list[dict]:
    """Per app type ever seen in scope: the status and time of its newest call.

    The one figure in raw SQL (the ORM cannot write a recursive CTE). Its scope
    is given as site ids, the same the scoped querysets use: ``None`` for every
    site, otherwise exactly these sites (passed as a query parameter).
    """
    connection = reading(RunLog)
    table = connection.ops.quote_name(RunLog._meta.db_table)
    if site_ids is None:
        sql, params = APP_HEALTH_ALL_SITES.format(table=table), []
    else:
        sql, params = APP_HEALTH_SITES.format(table=table), [list(site_ids)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [
        {"app_type": app_type, "last_status": status, "last_call_at": created_at}
        for app_type, status, created_at in rows
    ]


def budget(runs) -> dict:
    """Tokens of successful calls today and this local month against the limits.

    Pass every site's rows: the budget is the whole business's (SPEC.md §4).
    """
    day = local_today()
    used = rollup.sums(
        rollup.site_scope(runs),
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


def recent_alerts(runs) -> list[dict]:
    """The newest pending alerts (alert_status NULL or 'pending'), newest first."""
    return list(runs.pending_alerts().newest_first().values(*ALERT_FIELDS)[:RECENT_ALERTS])


# --- The chosen time range (SPEC.md §8) ----------------------------------------------

# The newest call and the newest failure of each app in the window: two backward
# probes per app of the (app_type, created_at) / (site_id, app_type, created_at)
# indexes, for the handful of apps the window's sums found.
APP_LAST_CALLS = """
SELECT apps.app_type, last_call.status, last_call.created_at, last_failure.created_at
FROM unnest(%(apps)s::text[]) AS apps(app_type)
LEFT JOIN LATERAL (
    SELECT r.status, r.created_at FROM {table} r
    WHERE r.app_type = apps.app_type AND r.created_at >= %(since)s AND r.created_at < %(until)s
      {scope}
    ORDER BY r.created_at DESC LIMIT 1
) last_call ON true
LEFT JOIN LATERAL (
    SELECT r.created_at FROM {table} r
    WHERE r.app_type = apps.app_type AND r.created_at >= %(since)s AND r.created_at < %(until)s
      AND r.status IN ('failed', 'timeout', 'circuit_open') {scope}
    ORDER BY r.created_at DESC LIMIT 1
) last_failure ON true
"""


def range_figures(site_ids: list[int] | None, window) -> dict:
    """``{"range": totals, "apps": [per app]}`` for the calls created in ``window``.

    Sums and latencies come from the rollups for closed hours and the raw calls for
    the edges (``aimonitor.rollup``); counts, sums and means are exact, p95 is within
    2 %. Apps: most failures first, then most calls, then by name.
    """
    bounds = (window.since, window.until)
    totals, p95 = rollup.sums_and_percentiles(site_ids, {"r": bounds}, 0.95)
    per_app, app_p95 = rollup.apps_in_window(site_ids, bounds, 0.95)
    prices = pricing.price_list()
    apps = {app: row for app, row in per_app.items() if row["calls"]}
    last = _last_calls(site_ids, window, sorted(apps))
    row = totals.get("r", NO_CALLS)
    summary = {
        "since": window.since,
        "until": window.until,
        "calls": row["calls"],
        "failures": row["failures"],
        "success_rate": ratio(row["successes"], row["calls"]),
        "tokens": int(row["tokens"]),
        "avg_latency_ms": milliseconds(rollup.mean(row["latency_sum"], row["latency_count"])),
        "p95_latency_ms": milliseconds(p95["r"]),
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
                    rollup.mean(sums["latency_sum"], sums["latency_count"])
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


def _last_calls(site_ids, window, apps: list[str]) -> dict[str, tuple]:
    """``{app_type: (last status, last call at, last failure at)}`` within the window."""
    if not apps:
        return {}
    connection = reading(RunLog)
    table = connection.ops.quote_name(RunLog._meta.db_table)
    scope = "" if site_ids is None else "AND r.site_id = ANY(%(sites)s)"
    params = {"apps": apps, "since": window.since, "until": window.until, "sites": site_ids}
    with connection.cursor() as cursor:
        cursor.execute(APP_LAST_CALLS.format(table=table, scope=scope), params)
        return {app: (status, at, failed_at) for app, status, at, failed_at in cursor.fetchall()}
