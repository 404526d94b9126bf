"""``make load``: gunicorn on a 1,000,000-run database, driven by 50 logged-in clients.

    make load                                  # build (or rebuild) aimonitor_load, 60 s run
    make load ARGS="--reuse"                   # reuse aimonitor_load if it is already seeded
    make load ARGS="--reuse --clients 20 --duration 30 --workers 3"
    make load ARGS="--reuse --servers 2 --writes"   # two gunicorns, writes, consistency check
    make load ARGS="--reuse --servers 2 --worker-processes 2 --writes"  # and two run_workers

Steps: (1) on the embedded PostgreSQL (or ``DATABASE_URL``'s server) create the
throwaway database ``aimonitor_load``, migrate it, create the AI tables and seed
``--runs`` calls (skipped with ``--reuse`` when a database of that size exists);
(2) create load-test users of every role with ``grant_access``; (3) start gunicorn
with ``--workers`` processes on 127.0.0.1 (a free port), connected to the database
through its Unix socket; (4) ``--clients`` threads each log in through the real
login form (their own cookie jar, CSRF token from the form) and then, for
``--duration`` seconds, fetch the dashboard, its HTMX panels, /dashboard.json, the
lists and detail pages; (5) print throughput, p50/p95/p99 and errors (any status
other than 200, or no answer), and write them into docs/RELIABILITY.md.

With ``--servers 2`` two gunicorn instances serve the same database and every request
goes to one of them at random (a person's session is used by both). With ``--writes``
the operators and admins also triage alerts (``ack`` / ``ignore`` / ``reopen``) and
retry jobs, each retry's form submitted twice at once, to two servers; at the end a
consistency check reads the database: every triaged alert's audit trail is an unbroken
chain of transitions ending in the alert's state (nothing lost, nothing applied twice),
and each retry form made exactly one copy and one audit event.

With ``--worker-processes N``, N ``manage.py run_worker`` processes run beside the
gunicorns (a pass every 5 s) against a webhook receiver this script runs on 127.0.0.1,
with rules that fire on failures injected during the first half of the run; after the
web load the script waits until every incident is resolved and every delivery
finished, then checks that each event was queued once and reached the receiver exactly
once (``load/notify.py``).

Standard library only on the client side: threads, urllib and http.cookiejar. Every
loop is bounded by the deadline and every request by a timeout, so the run stops by
itself; gunicorn is stopped at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.cookiejar
import os
import random
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2

from load import notify

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "RELIABILITY.md"
PYTHON = sys.executable
DATABASE = "aimonitor_load"
START, END = "<!-- load:start -->", "<!-- load:end -->"
SEVERAL_START, SEVERAL_END = "<!-- load-servers:start -->", "<!-- load-servers:end -->"
WORKERS_START, WORKERS_END = "<!-- load-workers:start -->", "<!-- load-workers:end -->"
PANELS = ("today", "trend_7d", "app_distribution", "app_health", "budget", "recent_alerts")
# (username, role, grant_access site arguments, the sites it sees; None: every site)
USERS = [
    ("load_admin", "admin", ["--all-sites"], None),
    ("load_admin12", "admin", ["--site", "1", "--site", "2"], [1, 2]),
    ("load_operator1", "operator", ["--site", "1"], [1]),
    ("load_operator3", "operator", ["--site", "3"], [3]),
    ("load_viewer2", "viewer", ["--site", "2"], [2]),
    ("load_viewer4", "viewer", ["--site", "4"], [4]),
]
REQUEST_TIMEOUT_S = 60
WRITERS = ("admin", "operator")
TRIAGE_VERBS = ("ack", "ignore", "reopen")
WRITE_SHARE = {"triage": 0.06, "retry": 0.02}  # of a writer's requests, with --writes
CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


# --- The database ------------------------------------------------------------


def server_url() -> str:
    """DATABASE_URL's server, else the embedded one (started if needed)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    sys.path.insert(0, str(ROOT))
    from aimonitor.embedded_db import database_url

    return database_url()


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def maintenance(url: str):
    conn = psycopg2.connect(with_database(url, "postgres"))
    conn.autocommit = True
    return conn


def database_label(url: str) -> str | None:
    conn = maintenance(url)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
            [DATABASE],
        )
        row = cursor.fetchone()
    conn.close()
    return None if row is None else (row[0] or "")


def django_env(database_url: str) -> dict:
    env = dict(os.environ)
    env.pop("AIMONITOR_TEST_DB_NAME", None)
    env.update(
        DATABASE_URL=database_url,
        DJANGO_DEBUG="0",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        # Plain HTTP on loopback: cookies marked Secure would never be sent back.
        DJANGO_SECURE_COOKIES="0",
        PYTHONPATH=str(ROOT),
    )
    return env


def manage(env: dict, *args: str) -> None:
    print(f"$ manage.py {shlex.join(args)}", flush=True)
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def build(url: str, env: dict, runs: int, reuse: bool) -> str:
    """Create and seed aimonitor_load, or reuse it when it holds ``runs`` calls."""
    wanted = f"aimonitor load: runs={runs}"
    label = database_label(url)
    if reuse and label and label.startswith(wanted):
        print(f"Reusing {DATABASE} ({label}).", flush=True)
        manage(env, "migrate", "--verbosity", "0")
        manage(env, "create_ai_tables")
        return label
    conn = maintenance(url)
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{DATABASE}"')
    conn.close()
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "create_ai_tables")
    manage(env, "seed_demo", "--runs", str(runs), "--replace")
    load = psycopg2.connect(env["DATABASE_URL"])
    load.autocommit = True
    with load.cursor() as cursor:
        cursor.execute("SET statement_timeout = 0")
        cursor.execute("VACUUM ANALYZE")
    load.close()
    if (ROOT / "aimonitor" / "management" / "commands" / "rollup_runs.py").exists():
        manage(env, "rollup_runs", "--no-wait")  # as an operator would after deploying
    label = f"{wanted} seeded_at={dt.datetime.now(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    conn = maintenance(url)
    with conn.cursor() as cursor:
        cursor.execute(f'COMMENT ON DATABASE "{DATABASE}" IS %s', [label])
    conn.close()
    return label


def detail_ids(database_url: str) -> dict[str, dict[int, list[int]]]:
    """Recent run and job ids per site, for the detail pages each client may open."""
    ids: dict[str, dict[int, list[int]]] = {"runs": {}, "jobs": {}}
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cursor:
        for kind, table in (("runs", "ai_run_logs"), ("jobs", "ai_trigger_jobs")):
            schema = os.environ.get("AIMONITOR_AI_SCHEMA", "biz")
            cursor.execute(
                f"SELECT site_id, array_agg(id) FROM ("
                f"  SELECT site_id, id, row_number() OVER (PARTITION BY site_id ORDER BY id DESC) n"
                f"  FROM {schema}.{table} WHERE id > (SELECT max(id) - 20000 FROM {schema}.{table})"
                f") recent WHERE n <= 200 GROUP BY site_id"
            )
            ids[kind] = {site: list(site_ids) for site, site_ids in cursor.fetchall()}
        cursor.execute(
            f"SELECT site_id, array_agg(id) FROM ("
            f"  SELECT site_id, id, row_number() OVER (PARTITION BY site_id ORDER BY id DESC) n"
            f"  FROM {schema}.ai_run_logs WHERE status IN ('failed', 'timeout', 'circuit_open')"
            f"  AND id > (SELECT max(id) - 200000 FROM {schema}.ai_run_logs)"
            f") recent WHERE n <= 20 GROUP BY site_id"
        )
        # Few per site, so that two people often act on the same alert at once.
        ids["alerts"] = {site: list(site_ids) for site, site_ids in cursor.fetchall()}
    conn.close()
    return ids


# --- The server --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(env: dict, port: int, workers: int, log_path: Path) -> subprocess.Popen:
    command = [
        str(Path(PYTHON).with_name("gunicorn")),
        "aimonitor.wsgi",
        "--workers",
        str(workers),
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "60",
        "--backlog",
        "256",
    ]
    print(f"$ {shlex.join(command)}", flush=True)
    log = log_path.open("w")
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(base: str, server: subprocess.Popen, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit("gunicorn exited before answering; see its log.")
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit("gunicorn did not answer /healthz in time.")


def stop(server: subprocess.Popen) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)


# --- The clients -------------------------------------------------------------


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are answers to record, not to follow (a 302 to the login is an error)."""

    def redirect_request(self, *args, **kwargs):
        return None


class LoadClient:
    """One person: their own cookie jar, logged in through the login form."""

    def __init__(self, base, username: str, password: str, sites, ids, seed: int, writes=False):
        # One server, or several: then each request goes to one of them at random.
        self.bases = [base] if isinstance(base, str) else list(base)
        self.base = self.bases[0]
        self.writes = writes
        self.retry_keys: list[tuple[str, list]] = []  # (key, the statuses of its submits)
        self.username, self.password = username, password
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )
        self.random = random.Random(seed)
        self.sites = sites
        self.ids = ids

    def request(self, path: str, data: dict | None = None, headers=None):
        """(status, body) of one request; HTTP errors are answers too."""
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        base = self.random.choice(self.bases) if len(self.bases) > 1 else self.base
        request = urllib.request.Request(base + path, data=body, headers=headers or {})
        try:
            with self.opener.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def log_in(self) -> None:
        status, body = self.request("/accounts/login/")
        match = CSRF_INPUT.search(body.decode())
        if status != 200 or not match:
            raise RuntimeError(f"{self.username}: the login page answered {status}")
        status, _ = self.request(
            "/accounts/login/",
            {
                "csrfmiddlewaretoken": match.group(1),
                "username": self.username,
                "password": self.password,
                "next": "/",
            },
            headers={"Referer": self.base + "/accounts/login/"},
        )
        if status != 302 or not any(c.name == "sessionid" for c in self.jar):
            raise RuntimeError(f"{self.username}: logging in answered {status}")

    def site_param(self) -> str:
        """Now and then the site picker narrows to one of the user's sites."""
        if self.random.random() < 0.3:
            return f"?site={self.random.choice(self.sites or [1, 2, 3, 4])}"
        return ""

    def detail(self, kind: str) -> str:
        sites = [s for s in (self.sites or self.ids[kind]) if self.ids[kind].get(s)]
        if not sites:
            return f"/{kind}/"
        return f"/{kind}/{self.random.choice(self.ids[kind][self.random.choice(sites)])}/"

    def csrf_headers(self) -> dict:
        token = next((c.value for c in self.jar if c.name == "csrftoken"), "")
        return {"X-CSRFToken": token, "Referer": self.base + "/"}

    def triage(self) -> tuple[str, int | str]:
        """POST one transition on one of the few recent alerts of the person's sites."""
        sites = [s for s in (self.sites or self.ids["alerts"]) if self.ids["alerts"].get(s)]
        if not sites:
            return "/alerts/", 302
        alert = self.random.choice(self.ids["alerts"][self.random.choice(sites)])
        path = f"/alerts/{alert}/{self.random.choice(TRIAGE_VERBS)}/"
        return path, self.request(path, {}, headers=self.csrf_headers())[0]

    def retry_twice(self) -> tuple[str, int | str]:
        """A job's retry form submitted twice at once, to two servers: one copy expected."""
        page = self.detail("jobs")
        status, body = self.request(page)
        match = re.search(r'name="key" value="([^"]+)"', body.decode(errors="replace"))
        if status != 200 or not match:
            return page, status
        key, path = match.group(1), page + "retry/"
        statuses: list = []

        def submit(base):
            request = urllib.request.Request(
                base + path,
                # The "Retry again" tick: a job an earlier run retried (--reuse, same
                # seed) is copied again rather than refused with 409.
                data=urllib.parse.urlencode({"key": key, "again_ok": "on"}).encode(),
                headers=self.csrf_headers(),
            )
            try:
                with self.opener.open(request, timeout=REQUEST_TIMEOUT_S) as response:
                    statuses.append(response.status)
            except urllib.error.HTTPError as error:
                statuses.append(error.code)
            except (OSError, urllib.error.URLError) as error:
                statuses.append(type(error).__name__)

        targets = (self.bases * 2)[:2]
        threads = [threading.Thread(target=submit, args=(base,)) for base in targets]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT_S + 5)
        self.retry_keys.append((key, statuses))
        return path, 302 if statuses == [302, 302] else statuses

    def next_page(self) -> tuple[str, str, dict]:
        """(kind, path, headers): the mix of a person watching the console."""
        roll = self.random.random()
        hx = {"HX-Request": "true"}
        if roll < 0.10:
            return "dashboard", "/" + self.site_param(), {}
        if roll < 0.45:
            panel = self.random.choice(PANELS)
            return "panel", f"/dashboard/panels/{panel}/{self.site_param()}", hx
        if roll < 0.50:
            return "json", "/dashboard.json" + self.site_param(), {}
        if roll < 0.80:
            path = self.random.choice(
                [
                    "/runs/",
                    "/runs/?status=failed",
                    "/runs/?page=3",
                    "/jobs/",
                    "/jobs/?status=skipped_duplicate",
                    "/cache/",
                    "/alerts/",
                    "/alerts/?alert_status=all",
                ]
            )
            return "list", path, hx if self.random.random() < 0.5 else {}
        return "detail", self.detail(self.random.choice(["runs", "jobs"])), {}


def drive(client: LoadClient, deadline: float, max_requests: int, results: list, lock) -> None:
    """Fetch pages until the deadline (or the cap); record (kind, status, seconds)."""
    mine = []
    for _ in range(max_requests):
        if time.monotonic() >= deadline:
            break
        roll = client.random.random() if client.writes else 1.0
        started = time.monotonic()
        if roll < WRITE_SHARE["triage"] + WRITE_SHARE["retry"]:
            kind = "triage" if roll < WRITE_SHARE["triage"] else "retry"
            try:
                path, status = client.triage() if kind == "triage" else client.retry_twice()
            except (OSError, urllib.error.URLError) as error:
                path, status = kind, f"{type(error).__name__}"
            # A write answers with a redirect: count it as the 200 of a page.
            status = 200 if status == 302 else status
            mine.append((kind, status, time.monotonic() - started, path))
            continue
        kind, path, headers = client.next_page()
        try:
            status, _ = client.request(path, headers=headers)
        except (OSError, urllib.error.URLError) as error:
            status = f"{type(error).__name__}"
        mine.append((kind, status, time.monotonic() - started, path))
    with lock:
        results.extend(mine)


def percentile(sorted_values: list[float], fraction: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return sorted_values[index]


def summarise(results: list, duration_s: float) -> dict:
    by_kind = defaultdict(list)
    errors = defaultdict(int)
    for kind, status, seconds, path in results:
        by_kind[kind].append(seconds)
        by_kind["all"].append(seconds)
        if status != 200:
            # A retry's two answers come as a list: "[302, 500]".
            status = str(status) if isinstance(status, list) else status
            errors[(status, path.split("?")[0])] += 1
    rows = {}
    for kind, values in by_kind.items():
        values.sort()
        rows[kind] = {
            "requests": len(values),
            "per_s": len(values) / duration_s,
            "p50": percentile(values, 0.50) * 1000,
            "p95": percentile(values, 0.95) * 1000,
            "p99": percentile(values, 0.99) * 1000,
        }
    return {"rows": rows, "errors": dict(errors)}


def markdown(summary: dict, args, label: str, measured_s: float, login_s: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"Measured {when} on {os.cpu_count()} CPUs; database `{DATABASE}` ({label}).",
        f'`make load ARGS="{" ".join(args.command_line)}"`: {args.clients} clients, '
        f"{args.servers} gunicorn instance(s) of {args.workers} gthread workers × 8 threads "
        f"on one database, {measured_s:.0f} s "
        f"(after {args.clients} logins through the form in {login_s:.0f} s).",
        "",
        "| requests | count | per second | p50 ms | p95 ms | p99 ms |",
        "|---|--:|--:|--:|--:|--:|",
    ]
    order = ["all", "dashboard", "panel", "json", "list", "detail", "triage", "retry"]
    for kind in order:
        row = summary["rows"].get(kind)
        if row:
            lines.append(
                f"| {kind} | {row['requests']:,} | {row['per_s']:.1f} | {row['p50']:.0f} "
                f"| {row['p95']:.0f} | {row['p99']:.0f} |"
            )
    everything = summary["rows"].get("all")
    if everything:
        lines.append("")
        lines.append(
            f"Every client sends its next request as soon as the last one answers, so a "
            f"request mostly waits its turn: by Little's law {args.clients} clients at "
            f"{everything['per_s']:.0f} requests/s spend about "
            f"{args.clients / everything['per_s'] * 1000:.0f} ms per request, whatever the "
            f"page; the work itself is about "
            f"{args.servers * args.workers / everything['per_s'] * 1000:.0f} "
            f"ms of a worker per request on average."
        )
    errors = summary["errors"]
    total = sum(errors.values())
    lines.append("")
    lines.append(f"Errors: **{total}**" + (":" if total else " (any status but 200 counts)."))
    lines.extend(f"- {status} on {path}: {count}" for (status, path), count in errors.items())
    check = summary.get("consistency")
    if check:
        lines += ["", "Consistency check (the database after the run):", ""]
        lines += [f"- {line}" for line in check["lines"]]
    notified = summary.get("notifications")
    if notified:
        lines += [
            "",
            f"Notifications ({args.worker_processes} `run_worker` processes, a pass every "
            f"{notify.WORKER_INTERVAL_SECONDS} s; failures injected for the first "
            f"{notified['inject_s']:.0f} s; everything resolved and delivered "
            f"{notified['settle_s']:.0f} s after the web load ended):",
            "",
        ]
        lines += [f"- {line}" for line in notified["lines"]]
    problems = [
        *(["errors"] if summary["errors"] else []),
        *(check or {}).get("problems", []),
        *(notified or {}).get("problems", []),
    ]
    lines += ["", f"Result: **{'FAIL: ' + ', '.join(problems) if problems else 'PASS'}**."]
    return "\n".join(lines)


def write_doc(section: str, several: bool = False, workers: bool = False) -> None:
    """Replace the run's section of RELIABILITY.md (one server, several, several + workers)."""
    start, end = (SEVERAL_START, SEVERAL_END) if several else (START, END)
    if workers:
        start, end = WORKERS_START, WORKERS_END
    text = DOC.read_text() if DOC.exists() else ""
    if start in text and end in text:
        before, rest = text.split(start, 1)
        after = rest.split(end, 1)[1]
        DOC.write_text(f"{before}{start}\n{section}\n{end}{after}")
    else:
        DOC.write_text(f"{text.rstrip()}\n\n{start}\n{section}\n{end}\n")
    print(f"Wrote the figures into {DOC.relative_to(ROOT)}.")


def consistency(database_url: str, since: dt.datetime, clients) -> dict:
    """Read back what the writers did: every write is there once, none is lost."""
    problems, lines = [], []
    conn = psycopg2.connect(database_url)
    schema = os.environ.get("AIMONITOR_AI_SCHEMA", "biz")
    with conn.cursor() as cursor:
        # Triage: each alert's events, in order, are a chain from its first "from" to its
        # present state; a lost update or a transition applied twice breaks the chain.
        cursor.execute(
            "SELECT target_ids[1], details ->> 'from', details ->> 'to' FROM aimonitor_auditevent"
            " WHERE created_at >= %s AND target_table = 'ai_run_logs'"
            " AND cardinality(target_ids) = 1 ORDER BY id",
            [since],
        )
        chains: dict[int, list[tuple[str, str]]] = defaultdict(list)
        for target, before, after in cursor.fetchall():
            chains[target].append((before, after))
        if chains:
            cursor.execute(
                f"SELECT id, coalesce(alert_status, 'pending') FROM {schema}.ai_run_logs"
                " WHERE id = ANY(%s)",
                [list(chains)],
            )
            state = dict(cursor.fetchall())
        broken = [
            target
            for target, chain in chains.items()
            if any(b != a for (_, a), (b, _) in zip(chain, chain[1:], strict=False))
            or any(before == after for before, after in chain)
            or chain[-1][1] != state.get(target)
        ]
        transitions = sum(len(chain) for chain in chains.values())
        lines.append(
            f"triage: {transitions:,} transitions audited on {len(chains):,} alerts; "
            f"{len(chains) - len(broken):,} alerts' audit trails chain to their present state"
            + (f", **{len(broken)} do not**: {broken[:10]}" if broken else " (all).")
        )
        if broken:
            problems.append("triage")
        # Retries: each form key made exactly one copy and one audit event.
        keys = [key for client in clients for key, _ in client.retry_keys]
        cursor.execute(
            "SELECT count(*), count(DISTINCT details ->> 'new_job_id'),"
            " count(DISTINCT details ->> 'retry_of') FROM aimonitor_auditevent"
            " WHERE created_at >= %s AND target_table = 'ai_trigger_jobs' AND action = 'retry'",
            [since],
        )
        events, new_jobs, _originals = cursor.fetchone()
        cursor.execute(
            f"SELECT count(*) FROM {schema}.ai_trigger_jobs WHERE is_forced AND created_at >= %s",
            [since],
        )
        copies = cursor.fetchone()[0]
        both = sum(1 for c in clients for _, st in c.retry_keys if st == [302, 302])
        lines.append(
            f"retry: {len(keys):,} forms each submitted twice at once to two servers "
            f"({both:,} answered 302 twice); {copies:,} forced copies and {events:,} audit "
            f"events ({new_jobs:,} distinct new jobs)"
            + (" — one each." if copies == events == new_jobs == len(keys) else " — **mismatch**.")
        )
        if not copies == events == new_jobs == len(keys):
            problems.append("retry")
    conn.close()
    return {"lines": lines, "problems": problems}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="reuse aimonitor_load when seeded")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1) + 1)
    parser.add_argument("--no-doc", action="store_true", help="do not update RELIABILITY.md")
    parser.add_argument("--servers", type=int, default=1, help="gunicorn instances")
    parser.add_argument(
        "--writes", action="store_true", help="operators triage and retry; check afterwards"
    )
    parser.add_argument(
        "--worker-processes",
        type=int,
        default=0,
        help="run_worker processes beside the servers, with rules, a receiver and a check",
    )
    parser.add_argument(
        "--settle-timeout",
        type=float,
        default=300.0,
        help="seconds to wait after the load for incidents to resolve and deliveries to finish",
    )
    args = parser.parse_args(argv)
    args.command_line = argv if argv is not None else sys.argv[1:]

    url = server_url()
    database_url = with_database(url, DATABASE)
    env = django_env(database_url)
    label = build(url, env, args.runs, args.reuse)
    password = secrets.token_urlsafe(16)
    for username, role, site_args, _ in USERS:
        manage(
            {**env, "AIMONITOR_PASSWORD": password},
            "grant_access",
            username,
            "--role",
            role,
            *site_args,
        )
    ids = detail_ids(database_url)

    bases, servers, logs = [], [], []
    for _ in range(args.servers):
        port = free_port()
        bases.append(f"http://127.0.0.1:{port}")
        logs.append(Path(os.environ.get("TMPDIR", "/tmp")) / f"aimonitor-load-gunicorn-{port}.log")
        servers.append(start_gunicorn(env, port, args.workers, logs[-1]))
    workers, receiver, injector = [], None, None
    if args.worker_processes:
        receiver = notify.Receiver()
        receiver.start()
        rule_ids = notify.set_up(database_url, receiver)
        workers, worker_logs = notify.start_workers(
            env, args.worker_processes, ROOT, PYTHON, logs[0].parent
        )
        logs += worker_logs
    log_path = ", ".join(str(path) for path in logs)
    since = dt.datetime.now(dt.UTC)
    try:
        for base, server in zip(bases, servers, strict=True):
            wait_healthy(base, server)
        clients = [
            LoadClient(
                bases,
                USERS[n % len(USERS)][0],
                password,
                USERS[n % len(USERS)][3],
                ids,
                n,
                writes=args.writes and USERS[n % len(USERS)][1] in WRITERS,
            )
            for n in range(args.clients)
        ]
        started = time.monotonic()
        login_threads = [threading.Thread(target=c.log_in) for c in clients]
        failures = []
        for thread, client in zip(login_threads, clients, strict=True):
            thread.run = _catching(thread.run, failures, client.username)
            thread.start()
        for thread in login_threads:
            thread.join(timeout=REQUEST_TIMEOUT_S * 3)
        login_s = time.monotonic() - started
        if failures or any(t.is_alive() for t in login_threads):
            raise SystemExit(f"Logging in failed: {failures or 'timed out'}")
        print(
            f"{args.clients} clients logged in ({login_s:.1f} s); load for {args.duration:.0f} s",
            flush=True,
        )

        results, lock = [], threading.Lock()
        started = time.monotonic()
        deadline = started + args.duration
        if args.worker_processes:
            # Half the run, at least two passes' worth, so incidents open then resolve.
            inject_s = max(args.duration / 2, 4 * notify.WORKER_INTERVAL_SECONDS)
            schema = os.environ.get("AIMONITOR_AI_SCHEMA", "biz")
            injector = notify.Injector(
                database_url,
                schema,
                started + inject_s,
                reopen_rule=rule_ids[notify.REOPENED],
                give_up_at=deadline + args.settle_timeout - 100,
            )
            injector.start()
        threads = [
            threading.Thread(target=drive, args=(c, deadline, 1_000_000, results, lock))
            for c in clients
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=args.duration + REQUEST_TIMEOUT_S + 10)
        measured_s = time.monotonic() - started
    finally:
        for server in servers:
            stop(server)
        if workers:
            try:
                print("Web load over; waiting for the incidents to resolve.", flush=True)
                if injector is not None:
                    settled, settle_s = notify.wait_settled(
                        database_url, rule_ids, workers, injector, args.settle_timeout
                    )
            finally:
                notify.stop_workers(workers)
                receiver.stop()

    summary = summarise(results, measured_s)
    if args.writes:
        summary["consistency"] = consistency(database_url, since, clients)
    if args.worker_processes:
        notified = notify.check(database_url, rule_ids, receiver, injector, workers, worker_logs)
        if not settled:
            notified["problems"].append(f"not settled within {args.settle_timeout:.0f} s")
        summary["notifications"] = {**notified, "inject_s": inject_s, "settle_s": settle_s}
    section = markdown(summary, args, label, measured_s, login_s)
    print(section)
    if not args.no_doc:
        write_doc(
            section,
            several=args.servers > 1 or args.writes,
            workers=args.worker_processes > 0,
        )
    failed = (
        summary["errors"]
        or summary.get("consistency", {}).get("problems")
        or summary.get("notifications", {}).get("problems")
    )
    if failed:
        print(f"Logs: {log_path}")
    print("FAIL" if failed else "PASS", flush=True)
    return 1 if failed else 0


def _catching(run, failures: list, name: str):
    def wrapped():
        try:
            run()
        except Exception as error:  # reported after the join
            failures.append(f"{name}: {error}")

    return wrapped


if __name__ == "__main__":
    raise SystemExit(main())
