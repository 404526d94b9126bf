"""Fill the AI tables with realistic demo data, generated inside PostgreSQL.

One INSERT … SELECT over generate_series per table: a million runs take
seconds, with no row passing through Python.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from aimonitor import ai_tables
from aimonitor.models import CacheEntry, RunLog, SiteName, TriggerJob

APPS = [
    "app1_chat",
    "app2_summary",
    "app3_clue",
    "app4_finance",
    "app5_recommend",
    "app6_churn",
    "app7_review",
    "app8_report",
]
DEMO_SITE_NAMES = {1: "静安旗舰店 Jing'an Flagship", 2: "浦东店 Pudong", 3: "西湖店 West Lake"}

# Placeholders: {runs} {jobs} {cache} {table} {sites} {days} {apps}
RUNS_SQL = """
INSERT INTO "{table}" (site_id, app_type, trigger_type, member_id, session_id,
    request_prompt, response_text, tokens_used, latency_ms, status, error_message,
    alert_status, created_at, finished_at)
SELECT
    site_id, app_type, trigger_type, member_id,
    CASE WHEN trigger_type = 'chat' THEN md5(member_id::text || day_offset::text) END,
    'Member ' || member_id || ' at site ' || site_id || ': ' || app_type
        || ' request. Summarise recent visits and spending, suggest the next step.',
    CASE WHEN status = 'success' THEN 'Member ' || member_id
        || ' visits weekly; spending is steady. Suggest a loyalty offer.' END,
    CASE WHEN status = 'success' THEN 300 + (r_tokens * 3500)::int
         WHEN status = 'failed' AND r_tokens < 0.5 THEN (r_tokens * 400)::int END,
    CASE WHEN status = 'timeout' THEN 30000
         WHEN status = 'circuit_open' THEN NULL
         WHEN status = 'running' THEN NULL
         ELSE (exp(6.2 + r_latency * 1.8))::int END,
    status,
    CASE status WHEN 'failed' THEN (ARRAY['upstream returned 500', 'invalid JSON in model output',
                                          'rate limited (429)', 'prompt too long'])[1 + (r_tokens * 3.99)::int]
                WHEN 'timeout' THEN 'model call exceeded 30 s'
                WHEN 'circuit_open' THEN 'circuit breaker open after repeated failures' END,
    CASE WHEN status NOT IN ('failed', 'timeout', 'circuit_open') THEN NULL
         WHEN age_days < 1 THEN CASE WHEN r_alert < 0.15 THEN 'acknowledged' WHEN r_alert < 0.5 THEN 'pending' END
         WHEN r_alert < 0.6 THEN 'acknowledged' WHEN r_alert < 0.85 THEN 'ignored'
         WHEN r_alert < 0.92 THEN 'pending' END,
    created_at,
    CASE WHEN status = 'running' THEN NULL ELSE created_at + make_interval(secs => r_latency * 8) END
FROM (
    SELECT
        1 + (random() * ({sites} - 1))::int AS site_id,
        ({apps})[1 + floor(power(random(), 1.6) * {app_count})::int] AS app_type,
        (ARRAY['event', 'schedule', 'manual', 'chat', 'batch'])[1 + floor(random() * 5)::int] AS trigger_type,
        100000 + (random() * 49999)::int AS member_id,
        s.age_days, s.day_offset, s.created_at,
        random() AS r_tokens, random() AS r_latency, random() AS r_alert,
        CASE WHEN s.age_days < 0.02 AND r_status < 0.03 THEN 'running'
             WHEN r_status < 0.90 THEN 'success'
             WHEN r_status < 0.95 THEN 'failed'
             WHEN r_status < 0.985 THEN 'timeout'
             ELSE 'circuit_open' END AS status
    FROM (
        SELECT age_days, floor(age_days)::int AS day_offset,
               now() - make_interval(secs => age_days * 86400) AS created_at,
               random() AS r_status
        FROM (SELECT random() * {days} AS age_days FROM generate_series(1, {runs})) ages
    ) s
) g
-- Oldest first: ids grow with time, as in the real table, and index inserts stay local.
ORDER BY created_at
"""

JOBS_SQL = """
INSERT INTO "{table}" (site_id, event_type, member_id, connector_type, payload, app_chain,
    is_forced, status, error_message, started_at, finished_at, created_at)
SELECT site_id, event_type, member_id, 'feiqiu',
    jsonb_build_object('member_id', member_id, 'amount', round((random() * 800)::numeric, 2),
                       'source', 'demo'),
    app_chain, r_forced < 0.05, status,
    CASE WHEN status = 'failed' THEN 'app chain stopped: upstream model error' END,
    CASE WHEN status <> 'pending' AND status <> 'skipped_duplicate' THEN created_at + interval '1 second' END,
    CASE WHEN status IN ('success', 'failed') THEN created_at + make_interval(secs => 2 + r_forced * 40) END,
    created_at
FROM (
    SELECT 1 + (random() * ({sites} - 1))::int AS site_id,
        (ARRAY['consumption', 'recharge', 'visit', 'birthday'])[1 + floor(random() * 4)::int] AS event_type,
        100000 + (random() * 49999)::int AS member_id,
        (ARRAY['app3_clue,app2_summary', 'app4_finance', 'app5_recommend,app6_churn',
               'app2_summary'])[1 + floor(random() * 4)::int] AS app_chain,
        random() AS r_forced,
        age_days,
        now() - make_interval(secs => age_days * 86400) AS created_at,
        CASE WHEN age_days < 0.01 AND r < 0.3 THEN 'pending'
             WHEN age_days < 0.01 AND r < 0.4 THEN 'running'
             WHEN r < 0.80 THEN 'success'
             WHEN r < 0.88 THEN 'failed'
             ELSE 'skipped_duplicate' END AS status
    FROM (SELECT random() * {days} AS age_days, random() AS r FROM generate_series(1, {jobs})) a
) j
ORDER BY created_at
"""

CACHE_SQL = """
INSERT INTO "{table}" (site_id, cache_type, target_id, result_json, status, created_at, expires_at)
SELECT site_id, cache_type, member_id::text,
    jsonb_build_object('summary', 'Cached ' || cache_type || ' result for member ' || member_id,
                       'score', round(random()::numeric, 3)),
    CASE WHEN random() < 0.85 THEN 'valid' ELSE 'invalidated' END,
    created_at, created_at + interval '7 days'
FROM (
    SELECT 1 + (random() * ({sites} - 1))::int AS site_id,
        ({apps})[1 + floor(random() * {app_count})::int] AS cache_type,
        100000 + (random() * 49999)::int AS member_id,
        now() - make_interval(secs => random() * {days} * 86400) AS created_at
    FROM generate_series(1, {cache})
) c
ORDER BY created_at
"""


class Command(BaseCommand):
    help = "Fill the AI tables with realistic demo data (generated in PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30)
        parser.add_argument("--runs", type=int, default=100_000)
        parser.add_argument("--sites", type=int, default=4)
        parser.add_argument(
            "--replace", action="store_true", help="Empty the three AI tables first."
        )

    def handle(self, *args, days, runs, sites, replace, **options):
        if days < 1 or runs < 0 or sites < 1:
            raise CommandError("--days and --sites must be at least 1, --runs at least 0.")
        ai_tables.create_missing()
        apps_array = "ARRAY[" + ", ".join(f"'{app}'" for app in APPS) + "]"
        common = {"sites": sites, "days": days, "apps": apps_array, "app_count": len(APPS)}
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            # Bulk generation is the one place a statement may run long.
            cursor.execute("SET LOCAL statement_timeout = 0")
            if replace:
                tables = ", ".join(
                    f'"{m._meta.db_table}"' for m in (RunLog, TriggerJob, CacheEntry)
                )
                cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY")
            cursor.execute(RUNS_SQL.format(table=RunLog._meta.db_table, runs=runs, **common))
            cursor.execute(
                JOBS_SQL.format(table=TriggerJob._meta.db_table, jobs=max(runs // 4, 1), **common)
            )
            cursor.execute(
                CACHE_SQL.format(
                    table=CacheEntry._meta.db_table, cache=max(runs // 10, 1), **common
                )
            )
            for site_id, name in DEMO_SITE_NAMES.items():
                if site_id <= sites:
                    SiteName.objects.get_or_create(site_id=site_id, defaults={"name": name})
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 0")
            for model in (RunLog, TriggerJob, CacheEntry):
                cursor.execute(f'ANALYZE "{model._meta.db_table}"')
        self.stdout.write(
            f"Seeded {runs:,} runs, {max(runs // 4, 1):,} jobs and {max(runs // 10, 1):,} cache "
            f"entries over {days} days and {sites} sites in {time.monotonic() - started:.1f} s."
        )
