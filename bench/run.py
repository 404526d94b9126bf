"""``make bench``: seed a throwaway database, measure the console against the reference SQL.

    make bench                                # 1,000,000 runs
    make bench ARGS="--rows 10000000"         # 10,000,000 runs
    make bench ARGS="--rows 10000000 --reuse" # measure again on the database already seeded
    make bench ARGS="--partitioned"           # the same on monthly-partitioned tables

Steps: (1) on the embedded PostgreSQL (or ``DATABASE_URL``'s server) create the
database ``aimonitor_bench_<rows>`` (dropped first unless ``--reuse`` finds one of
the same size), migrate it, apply the shipped DDL and generate the data inside
PostgreSQL with ``seed_demo`` (runs over ``--days`` days, ``--sites`` sites and 8
apps, plus jobs and cache rows), then VACUUM ANALYZE; (2) in a subprocess, measure
the pages in-process (``bench.measure``) and the reference service's statements on
the same database; (3) in a fresh subprocess, stream a CSV export and record its
peak memory growth; (4) print a table and write its section of docs/BENCHMARKS.md.

Not a test: timings depend on the machine. ``tests/test_query_counts.py`` is the
part that belongs in the suite.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
PYTHON = sys.executable
TARGET_MS = 100
TARGET_RATIO = 50
TARGET_CSV_MB = 50
TARGET_TRIAGE_MS = 150
TARGET_30D_MS = 300
TARGET_WORKER_MS = 1000  # one worker pass with 50 enabled rules (issue #17)


def server_url() -> str:
    """The server to build the bench database on: DATABASE_URL's, else the embedded one."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    sys.path.insert(0, str(ROOT))
    from aimonitor.embedded_db import database_url

    return database_url()


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def admin_connection(url: str):
    """A connection to the server's maintenance database, in autocommit."""
    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    return conn


def database_label(url: str, name: str) -> str | None:
    with admin_connection(url) as conn, conn.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [name],
        )
        row = cursor.fetchone()
    conn.close()
    return None if row is None else (row[0] or "")


def django_env(database_url: str, statement_timeout_ms: int) -> dict:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=env.get("DJANGO_SECRET_KEY") or "bench-only-secret-key-not-for-serving",
        DJANGO_ALLOWED_HOSTS="testserver",
        AIMONITOR_STATEMENT_TIMEOUT_MS=str(statement_timeout_ms),
        PYTHONPATH=str(ROOT),
    )
    env.pop("AIMONITOR_TEST_DB_NAME", None)
    return env


def manage(env: dict, *args: str) -> None:
    print(f"$ manage.py {' '.join(args)}", flush=True)
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


# Retries, which seed_demo does not make: one failed job in fifty was retried once, so
# the jobs list's ``retried=yes|no`` filter has a realistic console table to read
# (copy_id is left empty: the filter and the health panel never read it).
RETRIES_SQL = """
INSERT INTO aimonitor_jobretry (original_id, generation, copy_id, site_id, created_at)
SELECT id, 1, NULL, site_id, created_at + interval '1 hour'
FROM "{schema}".ai_trigger_jobs WHERE status = 'failed' AND id % 50 = 0
ON CONFLICT DO NOTHING
"""


def seed_retries(bench_url: str) -> None:
    schema = os.environ.get("AIMONITOR_AI_SCHEMA", "biz")
    bench = psycopg2.connect(bench_url)
    bench.autocommit = True
    with bench.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute(RETRIES_SQL.format(schema=schema))
        cursor.execute("ANALYZE aimonitor_jobretry")
    bench.close()


def build(url: str, name: str, args, env: dict) -> str:
    """Create and seed the bench database (or reuse one of the same size); its label."""
    wanted = f"aimonitor bench: runs={args.rows} days={args.days} sites={args.sites}"
    create = ["create_ai_tables"]
    if args.partitioned:
        wanted += " partitioned"
        create.append("--partitioned")
    label = database_label(url, name)
    if args.reuse and label and label.startswith(wanted):
        print(f"Reusing {name} ({label}).", flush=True)
        # The schema, the shipped indexes and the rollups as the code now has them.
        manage(env, "migrate", "--verbosity", "0")
        manage(env, *create)
        manage(env, "rollup_runs", "--no-wait")
        seed_retries(with_database(url, name))
        return label
    conn = admin_connection(url)
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    started = time.monotonic()
    manage(env, "migrate", "--verbosity", "0")
    manage(env, *create)
    manage(
        env,
        "seed_demo",
        "--runs",
        str(args.rows),
        "--days",
        str(args.days),
        "--sites",
        str(args.sites),
        "--replace",
    )
    seed_retries(with_database(url, name))
    bench = psycopg2.connect(with_database(url, name))
    bench.autocommit = True
    with bench.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        print("$ VACUUM ANALYZE", flush=True)
        cursor.execute("VACUUM ANALYZE")
    bench.close()
    seeded_s = time.monotonic() - started
    # The console's rollups, summed once as an operator would after deploying
    # (`manage.py rollup_runs`); from then on the dashboard keeps them up to date.
    started = time.monotonic()
    manage(env, "rollup_runs", "--no-wait")
    rollup_s = time.monotonic() - started
    seeded_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    label = f"{wanted} seeded_at={seeded_at} seed_s={seeded_s:.0f} rollup_s={rollup_s:.0f}"
    conn = admin_connection(url)
    with conn.cursor() as cursor:
        cursor.execute(f'COMMENT ON DATABASE "{name}" IS %s', [label])
    conn.close()
    return label


def machine(url: str) -> dict:
    """What the figures were measured on."""
    info = {"nproc": os.cpu_count(), "python": platform.python_version()}
    with contextlib.suppress(AttributeError):
        info["cpus_usable"] = len(os.sched_getaffinity(0))
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        info["cpu"] = model.group(1).strip() if model else platform.processor()
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        total = re.search(r"MemTotal:\s*(\d+) kB", meminfo.read_text())
        info["memory_gb"] = round(int(total.group(1)) / 1024 / 1024, 1) if total else None
    with psycopg2.connect(url) as conn, conn.cursor() as cursor:
        cursor.execute("SHOW server_version")
        info["postgresql"] = cursor.fetchone()[0]
        for setting in ("shared_buffers", "work_mem", "max_parallel_workers_per_gather", "jit"):
            cursor.execute(f"SHOW {setting}")
            info[setting] = cursor.fetchone()[0]
    conn.close()
    return info


def data_sizes(bench_url: str, schema: str) -> dict:
    sizes = {}
    with psycopg2.connect(bench_url) as conn, conn.cursor() as cursor:
        for table in ("ai_run_logs", "ai_trigger_jobs", "ai_cache"):
            # A partitioned table's own size is 0: add up its partitions'.
            cursor.execute(
                f"""SELECT count(*),
                    pg_size_pretty(pg_table_size('{schema}.{table}') + coalesce((SELECT
                        sum(pg_table_size(relid)) FROM pg_partition_tree('{schema}.{table}')
                        WHERE isleaf), 0)),
                    pg_size_pretty(pg_indexes_size('{schema}.{table}') + coalesce((SELECT
                        sum(pg_indexes_size(relid)) FROM pg_partition_tree('{schema}.{table}')
                        WHERE isleaf), 0))
                FROM {schema}.{table}"""
            )
            rows, heap, indexes = cursor.fetchone()
            sizes[table] = {"rows": rows, "table": heap, "indexes": indexes}
        cursor.execute(
            f"SELECT count(*) FROM {schema}.ai_run_logs WHERE created_at >= now() - interval '1 day'"
        )
        sizes["runs_last_24h"] = cursor.fetchone()[0]
    conn.close()
    return sizes


def run_json(env: dict, *args: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        out = handle.name
    try:
        subprocess.run(
            [PYTHON, "-m", "bench.measure", "--out", out, *args], cwd=ROOT, env=env, check=True
        )
        return json.loads(Path(out).read_text())
    finally:
        Path(out).unlink(missing_ok=True)


# --- Reporting -----------------------------------------------------------------


def fmt_ms(value) -> str:
    return "—" if value is None else (f"{value:,.1f}" if value < 1000 else f"{value:,.0f}")


def verdict(case: dict) -> str:
    """Whether a case meets issue #9's targets (dashboard: ≤100 ms and ≥50×; lists ≤100 ms).

    The targets are set for 10,000,000 runs; at smaller sizes the reference is faster
    too, so only the 100 ms part is checked there (the ratio is shown all the same).
    """
    ours = case["ours"]
    if "error" in ours:
        return "FAIL"
    p50 = ours["p50_ms"]
    if case["group"] == "triage":  # issue #16: 150 ms, 300 ms for a 30-day range
        limit = TARGET_30D_MS if "range=30d" in case["key"] else TARGET_TRIAGE_MS
        return "ok" if p50 <= limit else "SLOW"
    if case["group"] in ("runs", "jobs", "alerts", "cache"):
        return "ok" if p50 <= TARGET_MS else "SLOW"
    if case["group"] == "worker":
        return "ok" if p50 <= TARGET_WORKER_MS else "SLOW"
    if case["key"].startswith("dashboard.json"):
        ref = case["reference"].get("p50_ms")
        fast = p50 <= TARGET_MS
        ratio_ok = ref is None or ref / p50 >= TARGET_RATIO or case.get("rows", 0) < 10_000_000
        return "ok" if fast and ratio_ok else ("SLOW" if not fast else "<50x")
    return ""


def rows_of(result: dict) -> list[list[str]]:
    table = []
    for case in result["cases"]:
        case = {**case, "rows": result.get("rows", 0)}
        ours, ref = case["ours"], case["reference"]
        if "error" in ours:
            table.append([case["key"], "", "error: " + ours["error"], "", "", "", "", "FAIL"])
            continue
        ratio = (
            f"{ref['p50_ms'] / ours['p50_ms']:,.0f}×"
            if ref.get("p50_ms") and ours["p50_ms"]
            else "—"
        )
        table.append(
            [
                case["key"],
                str(ours.get("queries", "")),
                fmt_ms(ours.get("p50_ms")),
                fmt_ms(ours.get("p95_ms")),
                fmt_ms(ref.get("p50_ms")),
                fmt_ms(ref.get("p95_ms")),
                ratio,
                verdict(case),
            ]
        )
    return table


HEADER = [
    "page / figure",
    "queries",
    "ours p50 ms",
    "ours p95 ms",
    "reference p50 ms",
    "reference p95 ms",
    "ratio",
    "target",
]


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    lines = []
    for n, row in enumerate([HEADER, *rows]):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" + "---:|" * (len(HEADER) - 2) + "---|"]
    for row in rows:
        cells = [f"`{row[0]}`", *row[1:]]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines)


def agreement(differences: dict) -> str:
    """Whether our /dashboard.json figures equal the reference SQL's, in words."""
    lines = []
    for site, diffs in differences.items():
        scope = "every site" if site == "None" else f"site {site}"
        if diffs:
            lines.append(f"- Figures for {scope} differ from the reference: " + "; ".join(diffs))
        else:
            lines.append(
                f"- Figures for {scope} equal the reference's (today's calls, success rate, "
                "tokens and mean latency, the trend, the distribution, app health, budget)."
            )
    return "\n".join(lines)


def rollup_state(bench_url: str) -> str:
    """Where the console's rollups stood while the pages were measured."""
    with psycopg2.connect(bench_url) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT covered_until, max_id FROM aimonitor_rollupstate WHERE id = 1")
        row = cursor.fetchone()
    conn.close()
    if row is None or row[0] is None:
        return "the rollups were empty"
    zone = os.environ.get("AIMONITOR_TIME_ZONE", "Asia/Shanghai")
    now = dt.datetime.now(ZoneInfo(zone))
    return (
        f"measured at {now:%H:%M} {zone}; the rollups held the calls created before "
        f"{row[0].astimezone(ZoneInfo(zone)):%H:%M} (ids up to {row[1]:,}), the rest of "
        f"the open hour was read raw"
    )


def section(
    rows: int,
    command: str,
    label: str,
    info: dict,
    sizes: dict,
    result: dict,
    export: dict,
    args,
    state: str,
) -> str:
    runs = sizes["ai_run_logs"]
    lines = [
        f"## {rows:,} runs" + (", partitioned tables" if args.partitioned else ""),
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC with `{command}`.",
        "",
        f"- Machine: {info.get('cpu', '?')}, {info.get('nproc')} CPUs "
        f"({info.get('cpus_usable', info.get('nproc'))} usable), {info.get('memory_gb')} GB "
        f"memory; Python {info['python']}.",
        f"- PostgreSQL {info['postgresql']} (shared_buffers {info['shared_buffers']}, "
        f"work_mem {info['work_mem']}, max_parallel_workers_per_gather "
        f"{info['max_parallel_workers_per_gather']}, jit {info['jit']}).",
        f"- Data: {label}. `ai_run_logs` {runs['rows']:,} rows ({runs['table']} + "
        f"{runs['indexes']} of indexes; {sizes['runs_last_24h']:,} in the last 24 h at "
        f"measurement; {state}), `ai_trigger_jobs` {sizes['ai_trigger_jobs']['rows']:,}, `ai_cache` "
        f"{sizes['ai_cache']['rows']:,}.",
        f"- Ours: server time in-process (`django.test.Client`, DEBUG off), {args.warmup} "
        f"warm-up requests, then up to {args.repeat} (at least 3, within {args.budget:.0f} s). "
        f"Reference: its statements via psycopg2 on the same database, 1 warm-up, up to "
        f"{args.ref_repeat} runs (at least 3, within {args.ref_budget:.0f} s); ratio = "
        f"reference p50 / ours p50.",
        "",
        markdown_table(rows_of(result)),
        "",
        *([agreement(result["differences"]), ""] if result.get("differences") else []),
        f"CSV export (`/runs/?format=csv`, first {export['rows']:,} rows streamed, fresh "
        f"process): {export['seconds']:.2f} s, {export['bytes'] / 1e6:.1f} MB, peak RSS growth "
        f"**{export['peak_rss_growth_mb']:.1f} MB** (target < {TARGET_CSV_MB} MB).",
        "",
    ]
    return "\n".join(lines)


DOC_HEAD = """# Benchmarks

`make bench` (`bench/run.py`) builds a throwaway database `aimonitor_bench_<rows>` on the
embedded PostgreSQL (or `DATABASE_URL`'s server), generates the calls inside PostgreSQL
(`seed_demo`: 30 days, 4 sites, 8 apps, plus a quarter as many jobs and a tenth as many
cache entries), sums the console's rollups once (`manage.py rollup_runs`), and measures
the pages in-process against the reference service's own SQL on the same database.
Each size's section below is rewritten when the bench runs again at that size.

    make bench                                # 1,000,000 runs
    make bench ARGS="--rows 10000000"         # 10,000,000 runs (about 10 minutes to seed)
    make bench ARGS="--rows 10000000 --reuse" # again on the database already seeded

Targets (issue #9, at 10,000,000 runs on 2 cores): `/dashboard.json` p50 <= 100 ms and
>= 50x faster than the reference SQL; every list page p50 <= 100 ms with any single
filter; CSV export peak RSS growth < 50 MB for 100,000 rows; a fixed number of queries
per page (`tests/test_query_counts.py`, part of the suite; the bench itself is not a test).
Both sides run on the same database with the shipped indexes, so the reference's
statements benefit from the new indexes too; the seeded calls stop at the moment of
seeding, so a reused database has fewer calls in "today" than a live one would (at
10,000,000 calls over 30 days a full open hour is about 14,000 calls, read raw).

## How the console stays fast

- **Rollups of closed hours** (`aimonitor/summaries/`, console-owned tables
  `aimonitor_runrollup`, `aimonitor_runlatencyrollup`, `aimonitor_rollupstate`). Calls,
  successes, tokens, success tokens and latency sum/count per local hour, site and app;
  latencies in 2 %-wide buckets per hour and site. Today, the 7-day trend and app
  distribution and the month's budget read the rollups for closed hours and the raw calls
  only for the rest: the current hour, and "late" calls (created in a closed hour but
  with an id above the rollups' `max_id`), found by primary key. The rollups are brought
  up to date by the dashboard itself, once per request, in one statement and a bounded
  step; `manage.py rollup_runs` sums a large existing table at once.
- **App health by a loose index scan**: one index probe per app type, then its newest call.
- **Bounded lists**: counts stop at 10,000 ("10,000+"), pages stop there too; every filter
  has an index that also serves the order (`created_at, id`); alerts have partial
  indexes (pending ones their own) whose INCLUDEd columns answer the triage filters and
  the capped counts from the index alone; forced jobs have a partial index.
- **CSV exports** stream from a server-side cursor inside a transaction (outside one,
  Django declares it WITH HOLD and PostgreSQL computes the whole result first).

## What is exact and what is not

Exact: every count, success rate, token sum, mean latency, trend day, distribution share
and budget figure, including calls that arrive after their hour was summed (read raw by id
until the next refresh adds them, so they are counted once). An id is adopted a minute
after it was first seen, so a row whose id was taken by a transaction that committed later
is not skipped; hours close five minutes after they end.

Not exact:
- p95 latency comes from the buckets: exact when the two ranks it interpolates between fall
  in buckets holding one distinct value (e.g. small days), otherwise placed within its
  bucket (within 2 %).
- A call updated (e.g. `running` -> `success`, tokens filled in) more than five minutes
  after its hour ended, or deleted, is not re-read: the rollups keep what they summed.
  `manage.py rollup_runs --rebuild` recomputes them; a table emptied or recreated (its
  newest id going down) is detected and the rollups start again by themselves.

## Before (10,000,000 runs, same machine, before the rollups and indexes)

`/dashboard.json` p50 8,012 ms (one site 4,064 ms) against the reference's 21,773 ms
(9,912 ms): 3x. Panels: trend 3,002 ms, distribution 1,893 ms, budget 1,528 ms, today
1,302 ms. `/alerts/?app_type=...` 1,325 ms, `/alerts/?site=1` 673 ms, `/alerts/` 194 ms.
CSV export of 100,000 rows: 19.2 s (the WITH HOLD cursor computed all 10 M rows first).

"""


def write_doc(rows: int, text: str, variant: str = "") -> None:
    """Replace (or add, in order of size) the section of ``rows`` runs (and ``variant``)."""
    key = f"{rows}{variant}"
    start, end = f"<!-- bench rows={key} -->", f"<!-- /bench rows={key} -->"
    block = f"{start}\n{text}{end}\n"
    doc = DOC.read_text() if DOC.exists() else DOC_HEAD
    if start in doc and end in doc:
        before, rest = doc.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        doc = before + block + ("\n" + after if after else "")
    else:
        # Sections stay in order of size.
        keys = re.findall(r"<!-- bench rows=(\d+)(\S*) -->", doc)
        later = [(int(n), v) for n, v in keys if (int(n), v) > (rows, variant)]
        if later:
            marker = "<!-- bench rows={}{} -->".format(*min(later))
            doc = doc.replace(marker, block + "\n" + marker, 1)
        else:
            doc = doc.rstrip("\n") + "\n\n" + block
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(doc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="runs to generate")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--sites", type=int, default=4)
    parser.add_argument(
        "--reuse", action="store_true", help="reuse the bench database of this size if it exists"
    )
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per page at most")
    parser.add_argument("--ref-repeat", type=int, default=5)
    parser.add_argument("--ref-budget", type=float, default=90.0)
    parser.add_argument("--csv-rows", type=int, default=100_000)
    parser.add_argument(
        "--statement-timeout-ms",
        type=int,
        default=120_000,
        help="ours, so a slow page is measured rather than cut at 10 s",
    )
    parser.add_argument("--only", default="", help="measure only pages whose name contains this")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="CHARS",
        help="print every page's SQL statements and their times",
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write docs/BENCHMARKS.md")
    parser.add_argument("--drop", action="store_true", help="drop the bench database afterwards")
    parser.add_argument(
        "--partitioned",
        action="store_true",
        help="ai_run_logs and ai_trigger_jobs partitioned by month (create_ai_tables --partitioned)",
    )
    args = parser.parse_args()

    command = "make bench" + (f' ARGS="{shlex.join(sys.argv[1:])}"' if sys.argv[1:] else "")
    url = server_url()
    name = f"aimonitor_bench_{args.rows}" + ("_partitioned" if args.partitioned else "")
    bench_url = with_database(url, name)
    env = django_env(bench_url, args.statement_timeout_ms)
    label = build(url, name, args, env)
    schema = os.environ.get("AIMONITOR_AI_SCHEMA", "biz")
    info, sizes = machine(url), data_sizes(bench_url, schema)
    print(f"Measuring on {name}: {sizes['ai_run_logs']['rows']:,} runs.", flush=True)

    measure_args = [
        "--repeat",
        str(args.repeat),
        "--warmup",
        str(args.warmup),
        "--budget",
        str(args.budget),
        "--ref-repeat",
        str(args.ref_repeat),
        "--ref-budget",
        str(args.ref_budget),
    ]
    if args.only:
        measure_args += ["--only", args.only]
    if args.no_reference:
        measure_args.append("--no-reference")
    if args.profile:
        measure_args += ["--profile", str(args.profile)]
    result = run_json(env, *measure_args)
    result["rows"] = args.rows
    state = rollup_state(bench_url)
    export = run_json(env, "--csv-export", str(args.csv_rows))

    print()
    print(text_table(rows_of(result)))
    if result.get("differences") is not None:
        print("\n" + agreement(result["differences"]))
    print(
        f"\nCSV export: {export['rows']:,} rows in {export['seconds']:.2f} s, peak RSS growth "
        f"{export['peak_rss_growth_mb']:.1f} MB (target < {TARGET_CSV_MB} MB)."
    )
    if not args.no_doc and not args.only:
        text = section(args.rows, command, label, info, sizes, result, export, args, state)
        write_doc(args.rows, text, "-partitioned" if args.partitioned else "")
        print(f"Wrote {DOC.relative_to(ROOT)}.")
    if args.drop:
        conn = admin_connection(url)
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.close()


if __name__ == "__main__":
    main()
