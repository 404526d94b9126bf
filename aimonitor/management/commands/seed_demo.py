"""Fill the AI tables with realistic demo data, generated inside PostgreSQL.

One INSERT … SELECT over generate_series per table (and one per story below): a million
runs take seconds, with no row passing through Python.

The data tells a story a new user can find on every page (issue #13):

- the tokens of a call are scaled to the default budget, so a fresh console's budget
  is in use (about 60 % of a full day) but not blown;
- ``app3_clue`` has a burst of timeouts in the last three hours (pending alerts);
- ``app7_review`` is slow (about six times the others' latency);
- site 3 (West Lake) has a tripped circuit breaker: its calls hit ``circuit_open``
  in the last day, no other site does;
- a few trigger jobs are stuck: pending for longer than AIMONITOR_STUCK_MINUTES (15).
"""

from __future__ import annotations

import time

from django.conf import settings
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
# The story (see the module docstring).
TIMEOUT_BURST_APP = "app3_clue"
TIMEOUT_BURST_HOURS = 3
SLOW_APP = "app7_review"
CIRCUIT_OPEN_SITE = 3
STUCK_JOBS = 5
# Successful calls' mean tokens before scaling (300 + uniform × 3,500).
MEAN_TOKENS = 300 + 3500 / 2
SUCCESS_SHARE = 0.9

# Placeholders: {runs} {table} {sites} {days} {apps} {app_count} {token_scale}
# {slow_app} {circuit_site} {burst} {burst_app} {burst_hours}. The first {burst} rows are
# the burst of timeouts (denser towards now, all pending); one INSERT keeps ids in time order.
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
    CASE WHEN status = 'success' THEN greatest(1, round((300 + r_tokens * 3500) * {token_scale}))::int
         WHEN status = 'failed' AND r_tokens < 0.5 THEN round(r_tokens * 400 * {token_scale})::int END,
    CASE WHEN status = 'timeout' THEN 30000
         WHEN status = 'circuit_open' THEN NULL
         WHEN status = 'running' THEN NULL
         WHEN app_type = '{slow_app}' THEN least(29000, (6 * exp(6.2 + r_latency * 1.8))::int)
         ELSE (exp(6.2 + r_latency * 1.8))::int END,
    status,
    CASE status WHEN 'failed' THEN (ARRAY['upstream returned 500', 'invalid JSON in model output',
                                          'rate limited (429)', 'prompt too long'])[1 + (r_tokens * 3.99)::int]
                WHEN 'timeout' THEN 'model call exceeded 30 s'
                WHEN 'circuit_open' THEN 'circuit breaker open after repeated failures' END,
    CASE WHEN status NOT IN ('failed', 'timeout', 'circuit_open') THEN NULL
         WHEN is_burst THEN NULL
         WHEN age_days < 1 THEN CASE WHEN r_alert < 0.15 THEN 'acknowledged' WHEN r_alert < 0.5 THEN 'pending' END
         WHEN r_alert < 0.6 THEN 'acknowledged' WHEN r_alert < 0.85 THEN 'ignored'
         WHEN r_alert < 0.92 THEN 'pending' END,
    created_at,
    CASE WHEN status = 'running' THEN NULL
         WHEN app_type = '{slow_app}' THEN created_at + make_interval(secs => 6 * r_latency * 8)
         ELSE created_at + make_interval(secs => r_latency * 8) END
FROM (
    SELECT
        site_id, app_type, trigger_type, member_id, is_burst,
        s.age_days, s.day_offset, s.created_at,
        random() AS r_tokens, random() AS r_latency, random() AS r_alert,
        CASE WHEN is_burst THEN 'timeout'
             WHEN s.age_days < 0.02 AND r_status < 0.03 THEN 'running'
             -- The circuit breaker of one site: tripped for a fifth of its calls today.
             WHEN site_id = {circuit_site} AND s.age_days < 1 AND r_status >= 0.80 THEN 'circuit_open'
             WHEN r_status < 0.92 THEN 'success'
             WHEN r_status < 0.97 THEN 'failed'
             WHEN site_id = {circuit_site} AND r_status >= 0.985 THEN 'circuit_open'
             ELSE 'timeout' END AS status
    FROM (
        SELECT age_days, is_burst, floor(age_days)::int AS day_offset,
               now() - make_interval(secs => age_days * 86400) AS created_at,
               random() AS r_status,
               1 + (random() * ({sites} - 1))::int AS site_id,
               CASE WHEN is_burst THEN '{burst_app}'
                    ELSE ({apps})[1 + floor(power(random(), 1.6) * {app_count})::int] END AS app_type,
               (ARRAY['event', 'schedule', 'manual', 'chat', 'batch'])[1 + floor(random() * 5)::int] AS trigger_type,
               100000 + (random() * 49999)::int AS member_id
        FROM (
            SELECT n <= {burst} AS is_burst,
                   CASE WHEN n <= {burst} THEN power(random(), 2) * {burst_hours} / 24.0
                        ELSE random() * {days} END AS age_days
            FROM generate_series(1, {runs}) n
        ) ages
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

# Jobs the worker never picked up: pending for 20 minutes to 3 hours.
STUCK_JOBS_SQL = """
INSERT INTO "{table}" (site_id, event_type, member_id, connector_type, payload, app_chain,
    is_forced, status, created_at)
SELECT 1 + (n % {sites}), 'consumption', 100000 + n * 7919 % 49999, 'feiqiu',
    jsonb_build_object('member_id', 100000 + n * 7919 % 49999, 'source', 'demo'),
    'app3_clue,app2_summary', false, 'pending',
    now() - make_interval(mins => 20 + n * 160 / {count})
FROM generate_series(1, {count}) n
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
        burst = min(max(30, runs // 400), runs // 5)
        story = {
            "burst": burst,
            "burst_app": TIMEOUT_BURST_APP,
            "burst_hours": TIMEOUT_BURST_HOURS,
            "slow_app": SLOW_APP,
            "circuit_site": min(CIRCUIT_OPEN_SITE, sites),
            "token_scale": token_scale(runs - burst, days),
        }
        jobs = max(runs // 4, 1)
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            # Bulk generation is the one place a statement may run long.
            cursor.execute("SET LOCAL statement_timeout = 0")
            if replace:
                tables = ", ".join(
                    f'"{m._meta.db_table}"' for m in (RunLog, TriggerJob, CacheEntry)
                )
                cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY")
            cursor.execute(
                RUNS_SQL.format(table=RunLog._meta.db_table, runs=runs, **common, **story)
            )
            stuck = min(STUCK_JOBS, jobs // 2)
            cursor.execute(
                JOBS_SQL.format(table=TriggerJob._meta.db_table, jobs=jobs - stuck, **common)
            )
            if stuck:
                cursor.execute(
                    STUCK_JOBS_SQL.format(table=TriggerJob._meta.db_table, count=stuck, **common)
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
            f"Seeded {runs:,} runs, {jobs:,} jobs and {max(runs // 10, 1):,} cache "
            f"entries over {days} days and {sites} sites in {time.monotonic() - started:.1f} s."
        )


def token_scale(runs: int, days: int) -> float:
    """The factor on a call's tokens that puts a day of demo calls at about 60 % of the
    daily limit and the month at most at 80 % of the monthly one (never above 1: a
    generous budget keeps realistic calls)."""
    successes_per_day = max(runs / days * SUCCESS_SHARE, 1)
    per_day = min(
        0.6 * settings.DAILY_TOKEN_LIMIT, 0.8 * settings.MONTHLY_TOKEN_LIMIT / min(days, 31)
    )
    return round(min(1.0, per_day / successes_per_day / MEAN_TOKENS), 6)
