"""``run_worker`` as real processes against one database: two workers racing one
incident deliver each event once; a worker SIGKILLed between attempts or in the middle
of one loses nothing; ``--once`` runs one pass and exits."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone
from werkzeug import Response

from aimonitor.models import RunLog
from alerts.models import AlertRule, Channel, Delivery, Incident
from tests.conftest import make_run

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.django_db(transaction=True)


def worker_env(**extra) -> dict:
    """The worker processes' environment: this test's database, a 1-second interval."""
    url = urlsplit(settings.DATABASE_URL)
    test_url = urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))
    env = {
        **os.environ,
        "DATABASE_URL": test_url,
        "AIMONITOR_WORKER_INTERVAL_SECONDS": "1",
        "AIMONITOR_DELIVERY_STALE_SECONDS": "3",
        "AIMONITOR_NOTIFY_LANGUAGE": "en",
        **extra,
    }
    env.pop("AIMONITOR_TEST_DB_NAME", None)
    return env


def start_worker(*args) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_worker", *args],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def stop(*workers: subprocess.Popen) -> None:
    for worker in workers:
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def wait_for(condition, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


class Receiver:
    """A webhook receiver that records (delivery key, event, answer) of every request."""

    def __init__(self, answers=None, hang_first: float = 0):
        self.requests: list[tuple[str, str, int]] = []
        self.answers = list(answers or [])
        self.hang_first = hang_first
        self.lock = threading.Lock()

    def __call__(self, request):
        with self.lock:
            first = not self.requests
            status = self.answers.pop(0) if self.answers else 200
            self.requests.append(
                (request.headers["X-AIMonitor-Delivery"], request.get_json()["event"], status)
            )
        if first and self.hang_first:
            time.sleep(self.hang_first)
        return Response("ok" if status == 200 else "down", status=status)

    def accepted(self) -> list[tuple[str, str]]:
        return [(key, event) for key, event, status in self.requests if status == 200]


@pytest.fixture
def incident_setup(httpserver):
    def setup(receiver: Receiver) -> AlertRule:
        httpserver.expect_request("/hook").respond_with_handler(receiver)
        hook = Channel.objects.create(name="hook", kind="webhook", url=httpserver.url_for("/hook"))
        rule = AlertRule.objects.create(
            name="Chat failing",
            kind="failure_rate",
            threshold=0.5,
            window_minutes=15,
            min_calls=1,
            repeat_minutes=0,
        )
        rule.channels.set([hook])
        for _ in range(3):
            make_run(status="failed", created_at=timezone.now() - dt.timedelta(minutes=1))
        return rule

    return setup


def test_two_workers_racing_deliver_each_event_once(incident_setup):
    receiver = Receiver()
    incident_setup(receiver)
    workers = [start_worker(), start_worker()]
    try:
        wait_for(lambda: receiver.accepted(), what="the firing message")
        time.sleep(4)  # several more ticks of both workers
        assert [event for _, event in receiver.accepted()] == ["firing"]
        # Recovery: exactly one resolved message.
        RunLog.objects.update(status="success")
        wait_for(lambda: len(receiver.accepted()) == 2, what="the resolved message")
        time.sleep(4)
    finally:
        stop(*workers)
    assert [event for _, event in receiver.accepted()] == ["firing", "resolved"]
    assert len(receiver.requests) == 2
    assert Incident.objects.count() == 1
    assert sorted(Delivery.objects.values_list("event", "status", "attempts")) == [
        ("firing", "sent", 1),
        ("resolved", "sent", 1),
    ]


def test_a_worker_killed_between_attempts_loses_nothing(incident_setup):
    receiver = Receiver(answers=[503])  # the first attempt fails: a retry is scheduled
    incident_setup(receiver)
    first = start_worker()
    try:
        wait_for(lambda: receiver.requests, what="the first attempt")
        wait_for(
            lambda: Delivery.objects.filter(status="retrying").exists(), what="the 503 recorded"
        )
        os.killpg(first.pid, signal.SIGKILL)  # during the backoff
        first.wait()
        second = start_worker()
        try:
            wait_for(lambda: receiver.accepted(), what="the retry by the second worker")
            time.sleep(3)
        finally:
            stop(second)
    finally:
        stop(first)
    assert [event for _, event in receiver.accepted()] == ["firing"]
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 2)
    assert [entry["http_status"] for entry in delivery.log] == [503, 200]


def test_a_worker_killed_mid_attempt_is_replaced_with_the_same_delivery_key(incident_setup):
    """Killed while the receiver holds the request: nothing of the attempt is recorded, so
    the next worker sends again, with the same X-AIMonitor-Delivery key — the receiver
    gets the event once per key (a repeat of a request it may have seen is droppable)."""
    receiver = Receiver(hang_first=4)
    incident_setup(receiver)
    first = start_worker()
    try:
        wait_for(lambda: receiver.requests, what="the first attempt")
        os.killpg(first.pid, signal.SIGKILL)  # mid-request
        first.wait()
        assert Delivery.objects.get().attempts == 0  # the lock died with the connection
        second = start_worker()
        try:
            wait_for(
                lambda: Delivery.objects.filter(status="sent").exists(),
                timeout=60,
                what="the second worker's delivery",
            )
            time.sleep(2)
        finally:
            stop(second)
    finally:
        stop(first)
    keys = {key for key, _event, _status in receiver.requests}
    assert len(keys) == 1 and len(receiver.requests) == 2
    delivery = Delivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("sent", 1)


def test_once_runs_one_pass_delivers_and_exits(incident_setup):
    receiver = Receiver()
    incident_setup(receiver)
    done = subprocess.run(
        [sys.executable, "manage.py", "run_worker", "--once"],
        cwd=ROOT,
        env=worker_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "incidents opened 1" in done.stdout
    assert [event for _, event in receiver.accepted()] == ["firing"]
    assert Delivery.objects.get().status == "sent"


def test_run_console_starts_the_web_server_and_the_worker_and_ctrl_c_stops_both():
    import re
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    console = subprocess.Popen(
        [sys.executable, "manage.py", "run_console", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=worker_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = console.stdout.readline()
        web, worker = map(int, re.findall(r"pid (\d+)", line))

        def web_answers() -> bool:
            try:
                return (
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).status
                    == 200
                )
            except OSError:
                return False

        def worker_registered() -> bool:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM procrastinate_workers")
                return cursor.fetchone()[0] > 0

        wait_for(web_answers, what="the web server")
        wait_for(worker_registered, what="the worker")
        console.send_signal(signal.SIGINT)  # Ctrl-C
        assert console.wait(timeout=30) == 0
        assert "Stopped the web server and the worker." in console.stdout.read()
        for pid in (web, worker):
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not web_answers()
    finally:
        if console.poll() is None:
            console.kill()
            console.wait()
