"""Measure the console's pages and the reference SQL on one seeded database.

Run by ``bench.run`` in a subprocess whose ``DATABASE_URL`` names the bench
database. Pages are requested in-process with ``django.test.Client`` (server time:
routing, queries, rendering; no network), as a superuser (every site) and as a
viewer of one site. The reference service's statements run on a separate
psycopg2 connection to the same database. Results go to ``--out`` as JSON.

``--csv-export`` instead measures one streamed CSV export in this (fresh)
process: its time and the growth of the peak resident memory.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field

import django

# Whitenoise warns about the (uncollected) STATIC_ROOT; irrelevant to timings.
warnings.filterwarnings("ignore", message="No directory at")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aimonitor.settings")
django.setup()

import psycopg2  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from aimonitor.localtime import local_today  # noqa: E402
from aimonitor.models import RunLog, SiteAccess, TriggerJob  # noqa: E402
from bench.reference_sql import DASHBOARD_FIGURES, Reference  # noqa: E402
from dashboard.overview import PANELS  # noqa: E402

ROOT, VIEWER = "bench_root", "bench_site1"
SITE = 1


@dataclass
class Case:
    """One thing measured: a page of ours, and the reference's SQL for the same figures."""

    key: str
    group: str
    url: str | None
    user: str = ROOT
    ref: object = None  # callable(Reference) or None
    ref_label: str = ""
    ours: dict = field(default_factory=dict)
    reference: dict = field(default_factory=dict)


def summary(samples: list[float]) -> dict:
    """Median and p95 (nearest rank) in milliseconds."""
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, max(0, -(-95 * len(ordered) // 100) - 1))]
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(p95 * 1000, 2),
    }


def timed(fn, *, repeat: int, warmup: int, budget: float) -> dict:
    """``warmup`` untimed calls, then up to ``repeat`` timed ones (at least 3 within budget)."""
    for _ in range(warmup):
        fn()
    samples: list[float] = []
    started = time.perf_counter()
    while len(samples) < repeat:
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= 3 and time.perf_counter() - started > budget:
            break
    return summary(samples)


def ensure_users() -> dict[str, object]:
    """A superuser (every site) and a viewer of site 1."""
    users = get_user_model().objects
    root = users.filter(username=ROOT).first() or users.create_superuser(ROOT, password=None)
    viewer, _ = users.get_or_create(username=VIEWER)
    viewer.groups.set([Group.objects.get(name="viewer")])
    SiteAccess.objects.update_or_create(
        user=viewer, defaults={"all_sites": False, "site_ids": [SITE]}
    )
    return {ROOT: root, VIEWER: viewer}


def clients(users) -> dict[str, Client]:
    result = {}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        result[name] = client
    return result


def sample_values() -> dict:
    """Filter values that exist in the data: a recent member, the newest ids."""
    newest_run = RunLog.objects.order_by("-id").values("id", "member_id").first()
    newest_job = TriggerJob.objects.order_by("-id").values("id", "member_id").first()
    today = local_today()
    return {
        "run_id": newest_run["id"],
        "old_run_id": RunLog.objects.order_by("id").values_list("id", flat=True).first(),
        "member_id": newest_run["member_id"],
        "job_id": newest_job["id"],
        "job_member_id": newest_job["member_id"],
        "day": (today - dt.timedelta(days=2)).isoformat(),
        "old_day": (today - dt.timedelta(days=20)).isoformat(),
    }


def build_cases(v: dict) -> list[Case]:
    """Every page measured, with the reference's statements for the same figures."""
    cases: list[Case] = []

    def dash(site):
        return lambda ref: [ref.figure(name, site) for name in DASHBOARD_FIGURES]

    def figure(name, site):
        return lambda ref: ref.figure(name, site)

    cases += [
        Case(
            "dashboard.json",
            "dashboard",
            "/dashboard.json",
            ref=dash(None),
            ref_label="get_dashboard(None)",
        ),
        Case(
            "dashboard.json?site=1",
            "dashboard",
            f"/dashboard.json?site={SITE}",
            ref=dash(SITE),
            ref_label="get_dashboard(1)",
        ),
        Case(
            "dashboard.json (viewer of site 1)",
            "dashboard",
            "/dashboard.json",
            user=VIEWER,
            ref=dash(SITE),
            ref_label="get_dashboard(1)",
        ),
        Case("/ (whole page)", "dashboard", "/", ref=dash(None), ref_label="get_dashboard(None)"),
    ]
    for panel in PANELS:
        for site in (None, SITE):
            query = f"?site={site}" if site else ""
            cases.append(
                Case(
                    f"panel {panel}{query}",
                    "panels",
                    f"/dashboard/panels/{panel}/{query}",
                    # The incidents panel is the console's own: the reference has none.
                    ref=figure(panel, site) if panel in DASHBOARD_FIGURES else None,
                    ref_label=f"{panel}({site})" if panel in DASHBOARD_FIGURES else "",
                )
            )

    # The worker's pass (SPEC.md §10; target: <= 1 s with 50 enabled rules).
    cases.append(Case(f"worker pass ({WORKER_RULES} rules)", "worker", None))
    cases.append(Case(f"worker pass ({WORKER_RULES} rules, one over 24 h)", "worker", None))

    def runs(**filters):
        return lambda ref: ref.list_run_logs(filters)

    run_filters = [
        ("", {}),
        ("app_type=app8_report", {"app_type": "app8_report"}),
        ("status=failed", {"status": "failed"}),
        ("status=running", {"status": "running"}),
        ("trigger_type=chat", {"trigger_type": "chat"}),
        (f"member_id={v['member_id']}", None),
        (f"site={SITE}", {"site_id": SITE}),
        (f"date_from={v['day']}", {"date_from": v["day"]}),
        (f"date_to={v['old_day']}", {"date_to": v["old_day"]}),
        ("page=400", None),
    ]
    for query, ref_filters in run_filters:
        cases.append(
            Case(
                f"/runs/?{query}",
                "runs",
                f"/runs/?{query}",
                ref=runs(**ref_filters) if ref_filters is not None else None,
                ref_label=f"list_run_logs({ref_filters})",
            )
        )
    cases.append(
        Case(
            "/runs/ (viewer of site 1)",
            "runs",
            "/runs/",
            user=VIEWER,
            ref=runs(site_id=SITE),
            ref_label=f"list_run_logs({{'site_id': {SITE}}})",
        )
    )
    cases.append(Case("/runs/<newest id>/", "detail", f"/runs/{v['run_id']}/"))
    cases.append(Case("/runs/<oldest id>/", "detail", f"/runs/{v['old_run_id']}/"))

    def jobs(**filters):
        return lambda ref: ref.list_trigger_jobs(filters)

    job_filters = [
        ("", {}),
        ("event_type=recharge", {"event_type": "recharge"}),
        ("status=skipped_duplicate", {"status": "skipped_duplicate"}),
        ("status=pending", {"status": "pending"}),
        (f"site={SITE}", {"site_id": SITE}),
        (f"member_id={v['job_member_id']}", None),
        ("is_forced=true", None),
        ("batch=no-such-batch", None),
        (f"date_from={v['day']}", {"date_from": v["day"]}),
        (f"date_to={v['old_day']}", {"date_to": v["old_day"]}),
        # SPEC.md §9: the queue's filters (the console's own, no reference statement).
        ("retried=yes", None),
        ("retried=no", None),
        ("stuck=yes", None),
        (f"status=failed&site={SITE}&retried=no", None),
    ]
    for query, ref_filters in job_filters:
        cases.append(
            Case(
                f"/jobs/?{query}",
                "jobs",
                f"/jobs/?{query}",
                ref=jobs(**ref_filters) if ref_filters is not None else None,
                ref_label=f"list_trigger_jobs({ref_filters})",
            )
        )
    # The queue's health panel alone (the fragment it polls); /jobs/ above includes it.
    for site in (None, SITE):
        query = f"?site={site}" if site else ""
        cases.append(Case(f"/jobs/health/{query}", "jobs", f"/jobs/health/{query}"))
    cases.append(Case("/jobs/<newest id>/", "detail", f"/jobs/{v['job_id']}/"))

    def alerts(**kwargs):
        return lambda ref: ref.list_alerts(**kwargs)

    alert_filters = [
        ("", {"alert_status": "pending"}),
        ("alert_status=all", {}),
        ("alert_status=acknowledged", {"alert_status": "acknowledged"}),
        ("alert_status=ignored", {"alert_status": "ignored"}),
        ("app_type=app8_report", None),
        (f"site={SITE}", {"alert_status": "pending", "site_id": SITE}),
        (f"date_from={v['day']}", None),
        (f"date_to={v['old_day']}", None),
    ]
    for query, ref_kwargs in alert_filters:
        cases.append(
            Case(
                f"/alerts/?{query}",
                "alerts",
                f"/alerts/?{query}",
                ref=alerts(**ref_kwargs) if ref_kwargs is not None else None,
                ref_label=f"list_alerts({ref_kwargs})",
            )
        )
    cases.append(
        Case(
            "/alerts/ (viewer of site 1)",
            "alerts",
            "/alerts/",
            user=VIEWER,
            ref=alerts(alert_status="pending", site_id=SITE),
            ref_label=f"list_alerts({{'alert_status': 'pending', 'site_id': {SITE}}})",
        )
    )
    for query in (
        "",
        "cache_type=app3_clue",
        f"target_id={v['member_id']}",
        "status=invalidated",
        f"site={SITE}",
    ):
        cases.append(Case(f"/cache/?{query}", "cache", f"/cache/?{query}"))
    # Triage (issue #16): p50 ≤ 150 ms, and ≤ 300 ms for range=30d (bench.run.verdict).
    for url in (
        "/failures/?range=24h",
        "/failures/?range=7d",
        "/failures/?range=30d",
        "/failures/?range=7d&format=json",
        f"/failures/?range=7d&site={SITE}",
        "/dashboard.json?range=24h",
        "/dashboard.json?range=7d",
        "/dashboard.json?range=30d",
        "/runs/?q=timeout&range=24h",
        f"/runs/?q={v['member_id']}",
        "/alerts/?alert_status=all&status=timeout&range=24h",
    ):
        cases.append(Case(url, "triage", url))
    return cases


class QueryLog:
    """An execute wrapper that records each statement and its time (Django's own log is
    reset at every request start)."""

    def __init__(self):
        self.queries: list[tuple[float, str]] = []

    def __call__(self, execute, sql, params, many, context):
        t0 = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.queries.append(((time.perf_counter() - t0) * 1000, " ".join(sql.split())))


WORKER_RULES = 50


def ensure_rules(day_window: bool = False) -> None:
    """50 enabled rules of every kind, per site and every site, per app and each app,
    over 5, 15 and 60 minutes (``day_window``: one of them over 1,440 minutes)."""
    from alerts.models import AlertRule

    kinds = [
        ("failure_rate", 0.2),
        ("failure_count", 50),
        ("latency_p95", 2000),
        ("silence", 0),
        ("stuck_jobs", 10),
        ("budget", 0.8),
    ]
    for n in range(WORKER_RULES):
        kind, threshold = kinds[n % len(kinds)]
        site = None if n % 3 == 0 or kind == "budget" else 1 + n % 4
        app = "" if kind not in ("silence",) and n % 2 else "app1_chat"
        if kind in ("budget", "stuck_jobs"):
            app = ""
        AlertRule.objects.update_or_create(
            name=f"bench rule {n}",
            defaults={
                "kind": kind,
                "threshold": threshold,
                "site_id": site,
                "app_type": app,
                "window_minutes": 1440 if day_window and n == 1 else (5, 15, 60)[n % 3],
                "min_calls": 10,
                "repeat_minutes": 60,
                "enabled": True,
            },
        )


def top_up_last_hour() -> int:
    """Make the last hour as busy as the data set's average hour (a seeded database stops
    at the moment of seeding, so its 5- and 15-minute windows would be empty); the calls
    added, generated in PostgreSQL like seed_demo's."""
    from aimonitor.management.commands.seed_demo import APPS

    table = connection.ops.quote_name(RunLog._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT count(*) / greatest(1, extract(epoch FROM max(created_at) - min(created_at)) / 3600),
                       (SELECT count(*) FROM {table} WHERE created_at >= now() - interval '1 hour')
                FROM {table}"""
        )
        per_hour, last_hour = cursor.fetchone()
        missing = max(0, int(per_hour) - last_hour)
        if missing:
            cursor.execute(
                f"""INSERT INTO {table} (site_id, app_type, trigger_type, status, tokens_used,
                        latency_ms, error_message, created_at)
                    SELECT 1 + n %% 4, (%s::text[])[1 + n %% {len(APPS)}], 'event',
                           CASE WHEN n %% 10 = 0 THEN 'failed' WHEN n %% 37 = 0 THEN 'timeout'
                                ELSE 'success' END,
                           500 + n %% 1500, CASE WHEN n %% 20 = 0 THEN NULL ELSE 100 + n %% 4000 END,
                           CASE WHEN n %% 10 = 0 THEN 'upstream error ' || n END,
                           now() - (n %% 3600) * interval '1 second'
                    FROM generate_series(1, %s) n""",
                [APPS, missing],
            )
    return missing


def worker_pass() -> None:
    """One pass of ``run_worker`` (rollups caught up, every rule, incidents, deliveries)."""
    from alerts.tasks import enqueue
    from alerts.worker import work_pass

    work_pass(enqueue)


def measure_pages(cases, clients_by_user, *, repeat, warmup, budget, profile=0) -> None:
    for case in cases:
        if case.group == "worker":
            added = top_up_last_hour()
            if added:
                print(f"  added {added:,} calls over the last hour", file=sys.stderr, flush=True)
            ensure_rules(day_window="24 h" in case.key)
            log = QueryLog()
            with connection.execute_wrapper(log):
                worker_pass()
            case.ours = timed(worker_pass, repeat=repeat, warmup=warmup, budget=budget)
            case.ours["queries"] = len(log.queries)
            print(f"  ours {case.key}: {case.ours}", file=sys.stderr, flush=True)
            continue
        client = clients_by_user[case.user]
        extra = {"HTTP_HX_REQUEST": "true"} if case.group == "panels" else {}

        def get(case=case, client=client, extra=extra):
            response = client.get(case.url, **extra)
            if response.status_code != 200:
                raise RuntimeError(f"{case.url} answered {response.status_code}")
            if getattr(response, "streaming", False):
                for _ in response.streaming_content:
                    pass
            return response

        try:
            log = QueryLog()
            with connection.execute_wrapper(log):
                get()
            case.ours = timed(get, repeat=repeat, warmup=warmup, budget=budget)
            case.ours["queries"] = len(log.queries)
        except Exception as error:  # report the failure in the table and carry on
            case.ours = {"error": str(error)[:200]}
        print(f"  ours {case.key}: {case.ours}", file=sys.stderr, flush=True)
        if profile:
            for ms, sql in log.queries:
                print(f"      {ms:8.1f} ms  {sql[:profile]}", file=sys.stderr, flush=True)


def measure_reference(cases, *, repeat, warmup, budget) -> None:
    pg = psycopg2.connect(settings.DATABASE_URL)
    with pg.cursor() as cursor:
        # CURRENT_DATE must mean the console's "today" (SPEC.md §3).
        cursor.execute("SET TimeZone = %s", [str(settings.TIME_ZONE)])
        cursor.execute("SET statement_timeout = 0")
    pg.commit()
    reference = Reference(pg, settings.AI_SCHEMA)
    done: dict[str, dict] = {}
    labels = {case.ref_label for case in cases if case.ref is not None}
    for site in (None, SITE):
        if f"get_dashboard({site})" in labels:
            done.update(reference_dashboard(reference, site, repeat=repeat, budget=budget))
    for case in cases:
        if case.ref is None:
            continue
        # The same reference statements (e.g. get_dashboard(1)) are measured once.
        key = case.ref_label
        if key not in done:
            done[key] = timed(
                lambda fn=case.ref: fn(reference), repeat=repeat, warmup=warmup, budget=budget
            )
            print(f"  reference {key}: {done[key]}", file=sys.stderr, flush=True)
        case.reference = done[key]
    pg.close()


def reference_dashboard(reference: Reference, site, *, repeat: int, budget: float) -> dict:
    """``get_dashboard(site)``: its six figures in sequence, timed one by one and in total."""
    reference.figure("app_health", site)  # warm-up of the largest scan
    samples: dict[str, list[float]] = {name: [] for name in DASHBOARD_FIGURES}
    totals: list[float] = []
    started = time.perf_counter()
    while len(totals) < repeat:
        total = 0.0
        for name in DASHBOARD_FIGURES:
            t0 = time.perf_counter()
            reference.figure(name, site)
            samples[name].append(time.perf_counter() - t0)
            total += samples[name][-1]
        totals.append(total)
        if len(totals) >= 3 and time.perf_counter() - started > budget:
            break
    result = {f"get_dashboard({site})": summary(totals)}
    result.update({f"{name}({site})": summary(s) for name, s in samples.items()})
    print(f"  reference get_dashboard({site}): {result}", file=sys.stderr, flush=True)
    return result


def compare_with_reference(client: Client, site: int | None) -> list[str]:
    """Where ``/dashboard.json`` and the reference's SQL disagree (empty: they agree)."""
    body = client.get("/dashboard.json" + (f"?site={site}" if site else "")).json()
    pg = psycopg2.connect(settings.DATABASE_URL)
    with pg.cursor() as cursor:
        cursor.execute("SET TimeZone = %s", [str(settings.TIME_ZONE)])
        cursor.execute("SET statement_timeout = 0")
    reference = Reference(pg, settings.AI_SCHEMA)
    ref = {name: reference.figure(name, site) for name in DASHBOARD_FIGURES}
    pg.close()
    calls, successes, tokens, latency = ref["today"][0]
    expected = {
        "today_calls": calls,
        "today_success_rate": round(successes / calls, 4) if calls else 0.0,
        "today_tokens": int(tokens),
        "today_avg_latency_ms": round(float(latency), 2),
        "trend_7d": {day.isoformat(): n for day, n, _ in ref["trend_7d"]},
        "app_distribution": dict(ref["app_distribution"]),
        "app_health": {app: status for app, status, _ in ref["app_health"]},
        "budget": {
            "daily_used": int(ref["budget"][0][0]),
            "monthly_used": int(ref["budget"][0][1]),
        },
    }
    ours = {
        **{key: body[key] for key in expected if key.startswith("today_")},
        "trend_7d": {row["date"]: row["calls"] for row in body["trend_7d"] if row["calls"]},
        "app_distribution": {row["app_type"]: row["count"] for row in body["app_distribution"]},
        "app_health": {row["app_type"]: row["last_status"] for row in body["app_health"]},
        "budget": {key: body["budget"][key] for key in ("daily_used", "monthly_used")},
    }
    return [
        f"{key}: ours {ours[key]!r} reference {expected[key]!r}"
        for key in expected
        if ours[key] != expected[key]
    ]


def csv_export(rows: int) -> dict:
    """Stream the first ``rows`` rows of /runs/?format=csv; time and peak RSS growth."""
    users = ensure_users()
    client = clients({ROOT: users[ROOT]})[ROOT]
    client.get("/runs/")  # imports, templates, connection: not part of the export
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get("/runs/?format=csv")
    lines = size = 0
    for chunk in response.streaming_content:
        lines += chunk.count(b"\n")
        size += len(chunk)
        if lines > rows:
            break
    response.close()
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": min(lines - 1, rows),
        "bytes": size,
        "seconds": round(elapsed, 3),
        "peak_rss_before_mb": round(before / 1024, 1),
        "peak_rss_growth_mb": round((after - before) / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=30.0)
    parser.add_argument("--ref-repeat", type=int, default=5)
    parser.add_argument("--ref-budget", type=float, default=60.0)
    parser.add_argument("--csv-export", type=int, default=0, metavar="ROWS")
    parser.add_argument("--only", default="", help="measure only cases whose key contains this")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="CHARS",
        help="print each page's statements and times (first CHARS of the SQL)",
    )
    args = parser.parse_args()

    if args.csv_export:
        result = csv_export(args.csv_export)
    else:
        users = ensure_users()
        differences = None
        cases = build_cases(sample_values())
        if args.only:
            cases = [c for c in cases if args.only in c.key]
        measure_pages(
            cases,
            clients(users),
            repeat=args.repeat,
            warmup=args.warmup,
            budget=args.budget,
            profile=args.profile,
        )
        if not args.no_reference:
            measure_reference(cases, repeat=args.ref_repeat, warmup=1, budget=args.ref_budget)
            client = clients(users)[ROOT]
            differences = {str(site): compare_with_reference(client, site) for site in (None, SITE)}
        result = {
            "differences": differences,
            "cases": [
                {
                    "key": c.key,
                    "group": c.group,
                    "url": c.url,
                    "user": c.user,
                    "ref_label": c.ref_label if c.ref else "",
                    "ours": c.ours,
                    "reference": c.reference,
                }
                for c in cases
            ],
        }
    with open(args.out, "w") as out:
        json.dump(result, out, indent=1)


if __name__ == "__main__":
    main()
