"""The notification side of ``make load --worker-processes N`` (issue #18).

Beside the gunicorns, N ``manage.py run_worker`` processes run against the load
database with a 5-second pass. The load script itself:

- runs the webhook receiver on 127.0.0.1 (``Receiver``): it records every request it
  gets (path, ``X-AIMonitor-Delivery`` key, the payload's event) and answers the first
  request of every third new key with 503, so procrastinate's retries run too;
- creates two webhook channels pointing at it and three enabled rules scoped to app
  types of their own (``load_probe_a``, ``load_probe_b``), so the seeded calls never
  touch them (``RULES``);
- inserts failed calls during the first part of the run (``Injector``) and then stops,
  so the incidents open, are reminded (``repeat_minutes=1``: a 1-minute window keeps a
  rule firing for a minute after the last failure, so an incident opened while failures
  were injected always lives past its first reminder) and resolve;
- waits, after the web load, until every incident is resolved and every delivery
  finished, then checks (``check``): each sent delivery reached the receiver exactly
  once with a 2xx answer and as many requests as its attempts; the receiver got no key
  that is not a delivery and no event twice; one delivery row per (incident, channel,
  event, sequence); per (rule, key) no two incidents open at once; each rule opened
  what its injected failures call for and nothing else; every incident's reminder count
  matches its reminder deliveries.

The rows are written with plain SQL (the load script is not a Django process); the
worker reads them through the ORM like any rows an admin made.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg2

WORKER_INTERVAL_SECONDS = 5
PREFIX = "load notify"
# (name, kind, site_id, app_type, window, threshold, min_calls, repeat, channels, fires)
RULES = [
    ("load notify: failures A", "failure_count", 1, "load_probe_a", 1, 5, 0, 1, ("a", "b"), True),
    ("load notify: rate B", "failure_rate", None, "load_probe_b", 1, 0.5, 5, 0, ("a",), True),
    ("load notify: control", "failure_count", 1, "load_probe_a", 1, 1_000_000, 0, 1, ("b",), False),
]
# ``manage.py run_worker`` with its job lines logged (the console logs warnings only):
# each process's log then says which passes and deliveries it ran.
WORKER_WITH_LOG = (
    "import logging, runpy, sys\n"
    "for name in ('procrastinate.worker', 'alerts.tasks'):\n"
    "    logging.getLogger(name).setLevel(logging.INFO)\n"
    "sys.argv = ['manage.py', 'run_worker']\n"
    "runpy.run_path('manage.py', run_name='__main__')\n"
)
JOB_END = re.compile(r"Job (alerts\.\w+)\[\d+\].* ended with status: ([\w ,]+?),? lasted")
REMINDER = re.compile(r"Reminder (\d+)")
# The rule the injector fires a second time, after its first incident resolved.
REOPENED = "load notify: failures A"
CHANNELS = {"a": "load notify: receiver A", "b": "load notify: receiver B"}


class Receiver:
    """A webhook receiver on 127.0.0.1: records every request, fails some first tries."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[dict] = []  # {"path", "key", "event", "status"}
        self.keys_seen: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                key = self.headers.get("X-AIMonitor-Delivery", "")
                try:
                    payload = json.loads(body)
                except ValueError:
                    payload = {}
                event = payload.get("event")
                # What the message is about, from the receiver's side alone: one incident
                # (its rule and start), one event (a reminder's number from its text).
                reminder = REMINDER.search(payload.get("text") or "")
                identity = (
                    self.path,
                    payload.get("rule"),
                    payload.get("app_type"),
                    payload.get("started_at"),
                    event,
                    reminder.group(1) if reminder and event == "reminder" else "",
                )
                with receiver.lock:
                    new = key not in receiver.keys_seen
                    if new:
                        receiver.keys_seen.append(key)
                    # The first request of every third new key: a 503, to be retried.
                    status = 503 if new and len(receiver.keys_seen) % 3 == 0 else 200
                    receiver.requests.append(
                        {
                            "path": self.path,
                            "key": key,
                            "event": event,
                            "identity": identity,
                            "status": status,
                        }
                    )
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def set_up(database_url: str, receiver: Receiver) -> dict[str, int]:
    """Replace the previous run's channels and rules with fresh ones: {rule name: id}."""
    conn = psycopg2.connect(database_url)
    with conn, conn.cursor() as cursor:
        cursor.execute(
            "DELETE FROM alerts_delivery WHERE channel_id IN"
            " (SELECT id FROM alerts_channel WHERE name LIKE %s)"
            " OR incident_id IN (SELECT i.id FROM alerts_incident i"
            "  JOIN alerts_alertrule r ON r.id = i.rule_id WHERE r.name LIKE %s)",
            [PREFIX + "%", PREFIX + "%"],
        )
        cursor.execute(
            "DELETE FROM alerts_incident WHERE rule_id IN"
            " (SELECT id FROM alerts_alertrule WHERE name LIKE %s)",
            [PREFIX + "%"],
        )
        cursor.execute(
            "DELETE FROM alerts_alertrule_channels WHERE alertrule_id IN"
            " (SELECT id FROM alerts_alertrule WHERE name LIKE %s)",
            [PREFIX + "%"],
        )
        cursor.execute("DELETE FROM alerts_alertrule WHERE name LIKE %s", [PREFIX + "%"])
        cursor.execute("DELETE FROM alerts_channel WHERE name LIKE %s", [PREFIX + "%"])
        channel_ids = {}
        for letter, name in CHANNELS.items():
            cursor.execute(
                "INSERT INTO alerts_channel (name, kind, url, secret, recipients, enabled)"
                " VALUES (%s, 'webhook', %s, 'load-secret', '', true) RETURNING id",
                [name, f"{receiver.base}/{letter}"],
            )
            channel_ids[letter] = cursor.fetchone()[0]
        rule_ids = {}
        for name, kind, site, app, window, threshold, min_calls, repeat, channels, _ in RULES:
            cursor.execute(
                "INSERT INTO alerts_alertrule (name, kind, site_id, app_type, window_minutes,"
                " threshold, min_calls, repeat_minutes, enabled)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, true) RETURNING id",
                [name, kind, site, app, window, threshold, min_calls, repeat],
            )
            rule_ids[name] = cursor.fetchone()[0]
            for letter in channels:
                cursor.execute(
                    "INSERT INTO alerts_alertrule_channels (alertrule_id, channel_id)"
                    " VALUES (%s, %s)",
                    [rule_ids[name], channel_ids[letter]],
                )
    conn.close()
    return rule_ids


class Injector(threading.Thread):
    """Every second until ``until``: 1 failed call of load_probe_a on site 1, and 2 failed
    and 1 successful call of load_probe_b on sites 2 and 3 (a failure rate of 2/3).

    With ``reopen_rule`` (“failures A”): once that rule's incident has resolved, a second
    burst of ``SECOND_BURST_S`` seconds of load_probe_a failures alone, so the same
    (rule, key) opens a second incident after the first — the case where two workers
    could open it twice. Gives up waiting at ``give_up_at``."""

    SECOND_BURST_S = 20

    def __init__(self, database_url, schema, until, reopen_rule=None, give_up_at=0.0):
        super().__init__(daemon=True)
        self.database_url, self.schema, self.until = database_url, schema, until
        self.reopen_rule, self.give_up_at = reopen_rule, give_up_at
        self.inserted = defaultdict(int)
        self.second_burst = False
        self.error: Exception | None = None

    def burst(self, cursor, calls, until: float) -> None:
        while time.monotonic() < until:
            for site, app, status in calls:
                cursor.execute(
                    f"INSERT INTO {self.schema}.ai_run_logs (site_id, app_type,"
                    " trigger_type, member_id, request_prompt, tokens_used, latency_ms,"
                    " status, error_message, created_at)"
                    " VALUES (%s, %s, 'event', 999999, 'load probe', 0, 800, %s,"
                    " CASE WHEN %s = 'success' THEN NULL ELSE 'load probe' END, now())",
                    [site, app, status, status],
                )
                self.inserted[(app, status)] += 1
            time.sleep(1)

    def first_resolved(self, cursor) -> bool:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE resolved_at IS NULL)"
            " FROM alerts_incident WHERE rule_id = %s",
            [self.reopen_rule],
        )
        incidents, still_open = cursor.fetchone()
        return incidents > 0 and still_open == 0

    def run(self) -> None:
        try:
            conn = psycopg2.connect(self.database_url)
            conn.autocommit = True
            calls = [
                (1, "load_probe_a", "failed"),
                (2, "load_probe_b", "failed"),
                (3, "load_probe_b", "timeout"),
                (2, "load_probe_b", "success"),
            ]
            with conn.cursor() as cursor:
                self.burst(cursor, calls, self.until)
                if self.reopen_rule is not None:
                    while time.monotonic() < self.give_up_at and not self.first_resolved(cursor):
                        time.sleep(1)
                    if time.monotonic() < self.give_up_at:
                        self.second_burst = True
                        print("  notifications: second burst of failures A", flush=True)
                        self.burst(cursor, calls[:1], time.monotonic() + self.SECOND_BURST_S)
            conn.close()
        except Exception as error:  # reported by the check
            self.error = error


def start_workers(env: dict, count: int, root: Path, python: str, log_dir: Path):
    """N ``run_worker`` processes on the load database, a pass every 5 s."""
    worker_env = {
        **env,
        "AIMONITOR_WORKER_INTERVAL_SECONDS": str(WORKER_INTERVAL_SECONDS),
        "AIMONITOR_NOTIFY_LANGUAGE": "en",
        # The receiver is on loopback: never through a proxy the shell may have set.
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }
    workers, logs = [], []
    for n in range(count):
        command = [python, "-c", WORKER_WITH_LOG]
        print(f"$ manage.py run_worker  # worker {n + 1}, jobs logged", flush=True)
        logs.append(log_dir / f"aimonitor-load-worker-{n + 1}.log")
        workers.append(
            subprocess.Popen(
                command,
                cwd=root,
                env=worker_env,
                stdout=logs[-1].open("w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
    return workers, logs


def stop_workers(workers) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=10)


PASS_TICK = re.compile(r"Job alerts\.worker_pass\[\d+\]\(timestamp=(\d+)\) ended")


def worker_activity(logs) -> tuple[list[str], list[str]]:
    """Per worker process, the jobs it ran by task and outcome (from its log); and the
    periodic ticks whose pass ran more than once across the processes."""
    lines, ticks = [], defaultdict(int)
    for n, log in enumerate(logs, 1):
        counts = defaultdict(int)
        text = log.read_text(errors="replace") if log.exists() else ""
        for tick in PASS_TICK.findall(text):
            ticks[tick] += 1
        for task, outcome in JOB_END.findall(text):
            counts[(task.removeprefix("alerts."), outcome)] += 1
        done = ", ".join(
            f"{count} {task} {outcome.lower()}" for (task, outcome), count in sorted(counts.items())
        )
        lines.append(f"worker {n}: {done or 'no job'}")
    return lines, [tick for tick, count in ticks.items() if count > 1]


def settled(database_url: str, rule_ids: dict[str, int], injecting: bool) -> tuple[bool, str]:
    """(nothing left to do, what is still open or unfinished)."""
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM alerts_incident WHERE resolved_at IS NULL AND rule_id = ANY(%s)",
            [list(rule_ids.values())],
        )
        open_incidents = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM alerts_delivery d JOIN alerts_incident i ON i.id = d.incident_id"
            " WHERE i.rule_id = ANY(%s) AND d.status IN ('pending', 'retrying')",
            [list(rule_ids.values())],
        )
        unfinished = cursor.fetchone()[0]
        cursor.execute(
            "SELECT count(*) FROM alerts_incident WHERE rule_id = ANY(%s)",
            [list(rule_ids.values())],
        )
        incidents = cursor.fetchone()[0]
    conn.close()
    return (
        incidents > 0 and open_incidents == 0 and unfinished == 0 and not injecting,
        f"{incidents} incidents, {open_incidents} open, {unfinished} deliveries unfinished"
        + (", failures still injected" if injecting else ""),
    )


def wait_settled(database_url, rule_ids, workers, injector, timeout_s) -> tuple[bool, float]:
    started = time.monotonic()
    last = ""
    while time.monotonic() - started < timeout_s:
        done, state = settled(database_url, rule_ids, injector.is_alive())
        if state != last:
            print(f"  notifications: {state} ({time.monotonic() - started:.0f} s)", flush=True)
            last = state
        if done:
            return True, time.monotonic() - started
        if all(worker.poll() is not None for worker in workers):
            print("  every worker has exited", flush=True)
            break
        time.sleep(2)
    return False, time.monotonic() - started


def check(
    database_url: str, rule_ids, receiver: Receiver, injector: Injector, workers, logs
) -> dict:
    """Read the incidents and deliveries back and hold them against the receiver's log."""
    problems, lines = [], []
    ids = list(rule_ids.values())
    conn = psycopg2.connect(database_url)
    with conn.cursor() as cursor:
        cursor.execute(
            "SELECT i.id, i.rule_id, i.key, i.started_at, i.resolved_at, i.reminders"
            " FROM alerts_incident i WHERE i.rule_id = ANY(%s) ORDER BY i.started_at, i.id",
            [ids],
        )
        incidents = cursor.fetchall()
        cursor.execute(
            "SELECT d.id, d.incident_id, c.url, d.event, d.sequence, d.status, d.attempts"
            " FROM alerts_delivery d JOIN alerts_incident i ON i.id = d.incident_id"
            " JOIN alerts_channel c ON c.id = d.channel_id WHERE i.rule_id = ANY(%s)",
            [ids],
        )
        deliveries = cursor.fetchall()
        cursor.execute(
            "SELECT alertrule_id, count(*) FROM alerts_alertrule_channels"
            " WHERE alertrule_id = ANY(%s) GROUP BY alertrule_id",
            [ids],
        )
        channels_per_rule = dict(cursor.fetchall())
    conn.close()
    with receiver.lock:
        received = list(receiver.requests)

    if injector.error:
        problems.append("injector")
        lines.append(f"**the failure injector stopped**: {injector.error}")
    exited = [w.returncode for w in workers if w.poll() is not None and w.returncode not in (0,)]
    if exited:
        problems.append("workers")
        lines.append(f"**workers exited during the run** (codes {exited})")

    # Incidents: per rule, what fired; per (rule, key), never two open at once.
    by_rule = defaultdict(list)
    for incident in incidents:
        by_rule[incident[1]].append(incident)
    overlapping = []
    by_key = defaultdict(list)
    for incident_id, rule_id, key, started, resolved, _ in incidents:
        by_key[(rule_id, key)].append((started, resolved, incident_id))
    for spans in by_key.values():
        for (_, resolved, first), (started, _, second) in zip(spans, spans[1:], strict=False):
            if resolved is None or started < resolved:
                overlapping.append((first, second))
    expected = {
        name: (0 if not fires else 2 if name == REOPENED and injector.second_burst else 1)
        for name, *_, fires in RULES
    }
    if injector.reopen_rule is not None and not injector.second_burst:
        problems.append("the second burst never ran (the first incident did not resolve)")
    for name, *_, fires in RULES:
        opened = by_rule.get(rule_ids[name], [])
        still_open = [i[0] for i in opened if i[4] is None]
        reminders = sum(i[5] for i in opened)
        lines.append(
            f"rule “{name}”: {len(opened)} incident(s) opened, {len(still_open)} still open, "
            f"{reminders} reminder(s)"
            + f"; {expected[name]} expected"
            + ("" if fires else " (a control rule)")
        )
        if len(opened) != expected[name]:
            problems.append(f"{name}: {len(opened)} incidents, {expected[name]} expected")
        if still_open:
            problems.append(f"{name}: incidents {still_open} never resolved")
    lines.append(
        f"incidents: {len(incidents)} in all; "
        + (
            f"**{len(overlapping)} opened twice for one (rule, key) while open**: {overlapping}"
            if overlapping
            else "none opened twice for one (rule, key) while one was open."
        )
    )
    if overlapping:
        problems.append("incidents opened twice")

    # Deliveries: one row per event and channel, the right events, all sent.
    reminders_of = {i[0]: i[5] for i in incidents}
    rule_of = {i[0]: i[1] for i in incidents}
    rows = defaultdict(int)
    status_counts = defaultdict(int)
    events_by_incident = defaultdict(lambda: defaultdict(int))
    for _, incident_id, url, event, sequence, status, _ in deliveries:
        rows[(incident_id, url, event, sequence)] += 1
        status_counts[status] += 1
        events_by_incident[incident_id][event] += 1
    duplicated_rows = [key for key, count in rows.items() if count > 1]
    wrong_events = []
    for incident_id, rule_id in rule_of.items():
        channels = channels_per_rule.get(rule_id, 0)
        expected = {
            "firing": channels,
            "reminder": channels * reminders_of[incident_id],
            "resolved": channels,
        }
        got = {event: events_by_incident[incident_id].get(event, 0) for event in expected}
        if got != expected:
            wrong_events.append((incident_id, got, expected))
    lines.append(
        f"deliveries: {len(deliveries)} rows ("
        + ", ".join(f"{count} {status}" for status, count in sorted(status_counts.items()))
        + "); "
        + (
            "one row per (incident, channel, event, sequence); each incident has one firing "
            "and one resolved delivery per channel and one per reminder and channel."
            if not duplicated_rows and not wrong_events
            else f"**duplicated rows {duplicated_rows[:5]}, wrong events {wrong_events[:5]}**"
        )
    )
    if duplicated_rows or wrong_events:
        problems.append("delivery rows")
    if set(status_counts) - {"sent"}:
        problems.append("deliveries not sent")

    # The receiver's side: exactly one accepted request per sent delivery, nothing else.
    accepted = defaultdict(int)
    requests_per_key = defaultdict(int)
    events_seen = defaultdict(set)
    for request in received:
        requests_per_key[request["key"]] += 1
        if request["status"] < 300:
            accepted[request["key"]] += 1
        events_seen[request["key"]].add((request["path"], request["event"]))
    by_key_db = {f"aimonitor-delivery-{d[0]}": d for d in deliveries if d[5] == "sent"}
    not_once = [key for key in by_key_db if accepted.get(key, 0) != 1]
    attempts_mismatch = [
        key for key, d in by_key_db.items() if requests_per_key.get(key, 0) != d[6]
    ]
    unknown = [key for key in requests_per_key if key not in by_key_db]
    wrong_payload = [
        key
        for key, d in by_key_db.items()
        if events_seen.get(key) and events_seen[key] != {("/" + d[2].rsplit("/", 1)[1], d[3])}
    ]
    # The receiver's own view: no message about one event of one incident accepted twice
    # on one channel, whatever its key.
    identities = defaultdict(int)
    for request in received:
        if request["status"] < 300:
            identities[request["identity"]] += 1
    twice = [identity for identity, count in identities.items() if count > 1]
    retried = sum(1 for key in by_key_db if requests_per_key.get(key, 0) > 1)
    lines.append(
        f"receiver: {len(received)} requests, {sum(accepted.values())} answered 2xx, "
        f"{len(received) - sum(accepted.values())} answered 503 on purpose; "
        f"{len(by_key_db)} sent deliveries ({retried} after a retry) — "
        + (
            "each reached the receiver exactly once with a 2xx answer, as many requests as "
            "its recorded attempts, its own event on its own channel; no unknown key, and "
            "no event of an incident accepted twice on a channel (read from the payloads)."
            if not (not_once or attempts_mismatch or unknown or wrong_payload or twice)
            else (
                f"**not exactly once: {not_once[:5]}; attempts ≠ requests: "
                f"{attempts_mismatch[:5]}; unknown keys: {unknown[:5]}; wrong payload: "
                f"{wrong_payload[:5]}; one event accepted twice: {twice[:5]}**"
            )
        )
    )
    if not_once or attempts_mismatch or unknown or wrong_payload or twice:
        problems.append("receiver")
    activity, twice_ticks = worker_activity(logs)
    lines.append(
        "jobs run (from the workers' logs): "
        + "; ".join(activity)
        + (
            f"; **ticks whose pass ran twice: {twice_ticks[:5]}**"
            if twice_ticks
            else "; each periodic tick's pass ran once, in one worker."
        )
    )
    if twice_ticks:
        problems.append("a tick's pass ran twice")
    if any(line.endswith("no job") for line in activity):
        problems.append("a worker ran no job")
    inserted = ", ".join(f"{n} {app} {status}" for (app, status), n in injector.inserted.items())
    lines.append(f"failures injected: {inserted}.")
    return {"lines": lines, "problems": problems}
