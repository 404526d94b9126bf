"""The reference service's own SQL (shared/reference/admin_service.py.txt), as the baseline.

These are the exact statements of ``AdminAIService`` — ``_get_today_stats``,
``_get_7d_trend``, ``_get_app_distribution``, ``_get_app_health``, ``get_budget``,
``_get_recent_alerts``, ``list_run_logs``, ``list_trigger_jobs`` and ``list_alerts``
(each list with its ``COUNT(*)``) — with the schema substituted, run directly
with psycopg2. Like the reference, "today" is ``CURRENT_DATE``: the bench sets
the session's ``TimeZone`` to AIMONITOR_TIME_ZONE so that both sides mean the
same day. The results are fetched (as the service does) and thrown away.
"""

from __future__ import annotations

TODAY_STATS = """
SELECT
    COUNT(*) AS total_calls,
    COUNT(*) FILTER (WHERE status = 'success') AS success_count,
    COALESCE(SUM(tokens_used), 0) AS total_tokens,
    COALESCE(AVG(latency_ms) FILTER (WHERE latency_ms IS NOT NULL), 0)
        AS avg_latency
FROM {schema}.ai_run_logs
WHERE created_at >= CURRENT_DATE
  AND created_at < CURRENT_DATE + INTERVAL '1 day'
  {site_clause}
"""

TREND_7D = """
SELECT
    created_at::date AS day,
    COUNT(*) AS calls,
    COUNT(*) FILTER (WHERE status = 'success') AS success_count
FROM {schema}.ai_run_logs
WHERE created_at >= CURRENT_DATE - INTERVAL '6 days'
  {site_clause}
GROUP BY day
ORDER BY day
"""

APP_DISTRIBUTION = """
SELECT app_type, COUNT(*) AS cnt
FROM {schema}.ai_run_logs
WHERE created_at >= CURRENT_DATE - INTERVAL '6 days'
  {site_clause}
GROUP BY app_type
ORDER BY cnt DESC
"""

APP_HEALTH = """
SELECT DISTINCT ON (app_type)
    app_type,
    status AS last_status,
    created_at AS last_call_at
FROM {schema}.ai_run_logs
WHERE TRUE {site_clause}
ORDER BY app_type, created_at DESC
"""

BUDGET = """
SELECT
    COALESCE(SUM(tokens_used) FILTER (
        WHERE created_at >= CURRENT_DATE
          AND created_at < CURRENT_DATE + INTERVAL '1 day'
    ), 0) AS daily_used,
    COALESCE(SUM(tokens_used) FILTER (
        WHERE created_at >= date_trunc('month', CURRENT_DATE)
          AND created_at < date_trunc('month', CURRENT_DATE) + INTERVAL '1 month'
    ), 0) AS monthly_used
FROM {schema}.ai_run_logs
WHERE status = 'success'
"""

RECENT_ALERTS = """
SELECT id, app_type, status, alert_status,
       error_message, created_at
FROM {schema}.ai_run_logs
WHERE status IN ('failed', 'timeout', 'circuit_open')
  {site_clause}
ORDER BY created_at DESC
LIMIT %s
"""

RUN_LOGS_PAGE = """
SELECT id, app_type, trigger_type, member_id,
       tokens_used, latency_ms, status, site_id, created_at
FROM {schema}.ai_run_logs
{where_sql}
ORDER BY created_at DESC
LIMIT %s OFFSET %s
"""

TRIGGER_JOBS_PAGE = """
SELECT id, event_type, member_id, status, app_chain,
       is_forced, site_id, started_at, finished_at, created_at
FROM {schema}.ai_trigger_jobs
{where_sql}
ORDER BY created_at DESC
LIMIT %s OFFSET %s
"""

TODAY_SKIPPED = """
SELECT COUNT(*)
FROM {schema}.ai_trigger_jobs
WHERE status = 'skipped_duplicate'
  AND created_at >= CURRENT_DATE
  AND created_at < CURRENT_DATE + INTERVAL '1 day'
"""

ALERTS_PAGE = """
SELECT id, app_type, status, alert_status,
       error_message, created_at
FROM {schema}.ai_run_logs
{where_sql}
ORDER BY created_at DESC
LIMIT %s OFFSET %s
"""

# The dashboard's figures in the order get_dashboard() runs them.
DASHBOARD_FIGURES = (
    "today",
    "trend_7d",
    "app_distribution",
    "app_health",
    "budget",
    "recent_alerts",
)


class Reference:
    """The reference service's queries over one psycopg2 connection."""

    def __init__(self, connection, schema: str):
        self.connection = connection
        self.schema = schema

    def run(self, sql: str, params=(), *, site_clause: str = "", where_sql: str = ""):
        with self.connection.cursor() as cursor:
            cursor.execute(
                sql.format(schema=self.schema, site_clause=site_clause, where_sql=where_sql),
                params,
            )
            rows = cursor.fetchall()
        self.connection.commit()
        return rows

    @staticmethod
    def site_filter(site_id: int | None) -> tuple[str, tuple]:
        if site_id is None:
            return "", ()
        return "AND site_id = %s", (site_id,)

    # --- the dashboard --------------------------------------------------------

    def figure(self, name: str, site_id: int | None):
        """One figure of ``get_dashboard(site_id)``."""
        site_clause, params = self.site_filter(site_id)
        if name == "today":
            return self.run(TODAY_STATS, params, site_clause=site_clause)
        if name == "trend_7d":
            return self.run(TREND_7D, params, site_clause=site_clause)
        if name == "app_distribution":
            return self.run(APP_DISTRIBUTION, params, site_clause=site_clause)
        if name == "app_health":
            return self.run(APP_HEALTH, params, site_clause=site_clause)
        if name == "budget":
            return self.run(BUDGET)
        if name == "recent_alerts":
            return self.run(RECENT_ALERTS, (*params, 10), site_clause=site_clause)
        raise ValueError(name)

    # --- the lists ------------------------------------------------------------

    @staticmethod
    def where(filters: dict, keys: tuple[str, ...]) -> tuple[str, list]:
        parts, params = [], []
        for key in keys:
            if filters.get(key) is not None:
                parts.append(f"{key} = %s")
                params.append(filters[key])
        if filters.get("date_from"):
            parts.append("created_at >= %s")
            params.append(filters["date_from"])
        if filters.get("date_to"):
            parts.append("created_at <= %s")
            params.append(filters["date_to"])
        return ("WHERE " + " AND ".join(parts)) if parts else "", params

    def list_run_logs(self, filters: dict, page: int = 1, page_size: int = 20):
        where_sql, params = self.where(filters, ("app_type", "status", "trigger_type", "site_id"))
        total = self.run(
            "SELECT COUNT(*) FROM {schema}.ai_run_logs {where_sql}", params, where_sql=where_sql
        )
        rows = self.run(
            RUN_LOGS_PAGE, (*params, page_size, (page - 1) * page_size), where_sql=where_sql
        )
        return total, rows

    def list_trigger_jobs(self, filters: dict, page: int = 1, page_size: int = 20):
        where_sql, params = self.where(filters, ("event_type", "status", "site_id"))
        total = self.run(
            "SELECT COUNT(*) FROM {schema}.ai_trigger_jobs {where_sql}", params, where_sql=where_sql
        )
        rows = self.run(
            TRIGGER_JOBS_PAGE, (*params, page_size, (page - 1) * page_size), where_sql=where_sql
        )
        skipped = self.run(TODAY_SKIPPED)
        return total, rows, skipped

    def list_alerts(
        self,
        alert_status: str | None = None,
        site_id: int | None = None,
        page: int = 1,
        page_size: int = 20,
    ):
        parts = ["status IN ('failed', 'timeout', 'circuit_open')"]
        params: list = []
        if alert_status is not None:
            if alert_status == "pending":
                parts.append("(alert_status IS NULL OR alert_status = 'pending')")
            else:
                parts.append("alert_status = %s")
                params.append(alert_status)
        if site_id is not None:
            parts.append("site_id = %s")
            params.append(site_id)
        where_sql = "WHERE " + " AND ".join(parts)
        total = self.run(
            "SELECT COUNT(*) FROM {schema}.ai_run_logs {where_sql}", params, where_sql=where_sql
        )
        rows = self.run(
            ALERTS_PAGE, (*params, page_size, (page - 1) * page_size), where_sql=where_sql
        )
        return total, rows
