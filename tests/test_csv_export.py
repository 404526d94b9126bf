"""CSV exports: what Excel needs, and an export that is long or breaks midway (issues #12.6, #13.3).

- The file starts with a UTF-8 byte-order mark, gives ``site_name`` beside ``site_id``
  (unnamed sites "Site N") and is named after what, which site and when
  (``runs_site-2_2026-11-28.csv``; a non-ASCII name as RFC 5987 ``filename*``).
- Under the README's gunicorn command an export that takes longer than the worker
  timeout completes, and an export whose query fails midway is an aborted chunked
  transfer for the client, never a well-formed truncated file.
"""

from __future__ import annotations

import csv
import http.client
import io
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.utils import timezone

from aimonitor.models import RunLog, SiteName
from tests.conftest import client_for, make_cache, make_job, make_run, make_user

ROOT = Path(__file__).resolve().parent.parent
BOM = "\ufeff".encode()


def download(response) -> bytes:
    return b"".join(response.streaming_content)


def rows_of(response) -> list[dict]:
    body = download(response)
    assert body.startswith(BOM)
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def today() -> str:
    return timezone.localdate().isoformat()


def test_export_starts_with_a_bom_and_names_each_site(client, alice):
    SiteName.objects.create(site_id=1, name="静安旗舰店 Jing'an Flagship")
    make_run(site_id=1)
    make_run(site_id=2)
    rows = rows_of(client_for(client, alice).get("/runs/?format=csv"))
    assert [(row["site_id"], row["site_name"]) for row in rows] == [
        ("2", "Site 2"),
        ("1", "静安旗舰店 Jing'an Flagship"),
    ]
    header = list(rows[0])
    assert header.index("site_name") == header.index("site_id") + 1


@pytest.mark.parametrize("path", ["/runs/", "/jobs/", "/cache/", "/alerts/"])
def test_every_export_has_the_bom_and_site_names(client, alice, path):
    make_run(site_id=2, status="failed")
    make_job(site_id=2)
    make_cache(site_id=2)
    rows = rows_of(client_for(client, alice).get(path, {"format": "csv"}))
    assert [row["site_name"] for row in rows] == ["Site 2"]


@pytest.mark.parametrize(
    ("who", "path", "params", "name"),
    [
        ("bob", "/runs/", {}, "runs_site-1_{today}.csv"),
        ("alice", "/jobs/", {}, "jobs_sites-1-2_{today}.csv"),
        ("root", "/cache/", {}, "cache_all-sites_{today}.csv"),
        (
            "alice",
            "/alerts/",
            {"site": 2, "date_from": "2026-11-20", "date_to": "2026-11-28"},
            "alerts_site-2_2026-11-20_to_2026-11-28.csv",
        ),
        (
            "alice",
            "/runs/",
            {"site": 2, "date_from": "2026-11-20"},
            "runs_site-2_from-2026-11-20.csv",
        ),
        (
            "root",
            "/runs/",
            {"date_from": "2026-11-27", "date_to": "2026-11-27"},
            "runs_all-sites_2026-11-27.csv",
        ),
    ],
)
def test_file_name_says_what_which_site_and_when(client, db, request, who, path, params, name):
    user = request.getfixturevalue(who)
    response = client_for(client, user).get(path, {**params, "format": "csv"})
    expected = name.format(today=today())
    assert response["Content-Disposition"] == f'attachment; filename="{expected}"'


def test_a_named_site_is_in_the_file_name_as_rfc_5987(client, bob):
    SiteName.objects.create(site_id=1, name="静安旗舰店 Jing'an Flagship")
    response = client_for(client, bob).get("/runs/?format=csv")
    name = f"runs_site-1-静安旗舰店-Jing-an-Flagship_{today()}.csv"
    assert response["Content-Disposition"] == (
        f"attachment; filename=\"runs_site-1_{today()}.csv\"; filename*=UTF-8''{quote(name)}"
    )


# --- Under gunicorn ----------------------------------------------------------------------


def readme_gunicorn_command() -> list[str]:
    """The README's production command, as an operator would copy it."""
    for line in (ROOT / "README.md").read_text().splitlines():
        if line.startswith("gunicorn aimonitor.wsgi"):
            return shlex.split(line.split("#")[0])
    raise AssertionError("README has no gunicorn command")


def with_option(command: list[str], option: str, value: str) -> list[str]:
    if option in command:
        at = command.index(option)
        return [*command[: at + 1], value, *command[at + 2 :]]
    return [*command, option, value]


def test_database_url() -> str:
    """The test database, for a server process of its own."""
    if os.environ.get("DATABASE_URL"):
        url = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
    else:
        from aimonitor.embedded_db import database_url

        url = urllib.parse.urlsplit(database_url())
    return urllib.parse.urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


test_database_url.__test__ = False  # a helper, not a test


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn(transactional_db, tmp_path):
    """The README's gunicorn command, with a 2-second worker timeout, on the test database."""
    port = free_port()
    command = readme_gunicorn_command()
    command = with_option(command, "--bind", f"127.0.0.1:{port}")
    command = with_option(command, "--timeout", "2")
    command = with_option(command, "--workers", "1")
    command[0] = str(Path(sys.executable).with_name("gunicorn"))
    env = {
        **os.environ,
        "DATABASE_URL": test_database_url(),
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_COOKIES": "0",
    }
    env.pop("AIMONITOR_TEST_DB_NAME", None)
    log = tmp_path / "gunicorn.log"
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "gunicorn did not come up"
            time.sleep(0.2)
    try:
        yield port, log
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def many_runs(count: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO "{RunLog._meta.db_table}"
                (site_id, app_type, trigger_type, status, tokens_used, latency_ms,
                 error_message, created_at)
            SELECT 1, 'app1_chat', 'event', 'failed', n, n %% 5000,
                   'the upstream model answered 502 after ' || n || ' ms', %s - n * interval '1 second'
            FROM generate_series(1, %s) n""",
            [timezone.now(), count],
        )


def export(port: int, session: str) -> http.client.HTTPResponse:
    """GET /runs/?format=csv through a small receive window, so the server cannot run ahead."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16_384)
    sock.connect(("127.0.0.1", port))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.sock = sock
    conn.request(
        "GET", "/runs/?format=csv", headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={session}"}
    )
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    return response


def signed_in_session() -> str:
    client = Client()
    client.force_login(make_user("exporter", "viewer", sites=[1]))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


@pytest.mark.django_db(transaction=True)
def test_an_export_longer_than_the_worker_timeout_completes(gunicorn):
    port, log = gunicorn
    many_runs(80_000)
    response = export(port, signed_in_session())
    started, body = time.monotonic(), bytearray()
    while chunk := response.read(256 * 1024):
        body += chunk
        time.sleep(0.15)
    assert time.monotonic() - started > 4, "the export must outlast the 2-second worker timeout"
    lines = body.decode("utf-8-sig").splitlines()
    assert len(lines) == 80_001
    assert "WORKER TIMEOUT" not in log.read_text()


@pytest.mark.django_db(transaction=True)
def test_an_export_that_fails_midway_is_visibly_incomplete(gunicorn):
    port, _log = gunicorn
    many_runs(80_000)
    response = export(port, signed_in_session())
    first = response.read(64 * 1024)
    assert first.startswith(BOM)
    # The database connection serving the export goes away midway.
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
               WHERE datname = current_database() AND pid <> pg_backend_pid()"""
        )
        assert cursor.fetchone()[0] >= 1
    with pytest.raises(http.client.IncompleteRead):
        while response.read(256 * 1024):
            pass
