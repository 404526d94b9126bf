"""The console through a real PgBouncer in transaction mode (docs/SCALING.md).

PgBouncer 1.18 (``apt-get install pgbouncer``; .ci/run installs it) runs in front of
the test server with a pool of two server connections, and the ``default`` alias is
pointed at it for this module, with ``AIMONITOR_STATEMENT_TIMEOUT_MS=0`` (PgBouncer
refuses the ``options`` startup parameter). Pages, the CSV export (a server-side
cursor inside a transaction), a login (the throttle's transaction-level advisory
lock), a triage and a retry all work; what would not is shown too.
"""

from __future__ import annotations

import csv
import io
import os
import shutil

import psycopg2
import pytest
from django.db import connections

from aimonitor.models import AuditEvent, RunLog, TriggerJob
from tests.conftest import PASSWORD, make_job, make_run
from tests.pg_servers import PgBouncer

pytestmark = pytest.mark.django_db(transaction=True)

if shutil.which("pgbouncer") is None:
    if os.environ.get("CI"):
        raise RuntimeError("CI installs pgbouncer (.ci/run); it is missing.")
    pytest.skip("pgbouncer is not installed (apt-get install pgbouncer)", allow_module_level=True)


@pytest.fixture(scope="module")
def bouncer(django_db_setup, django_db_blocker):
    primary = connections["default"].settings_dict
    saved = {"HOST": primary["HOST"], "PORT": primary["PORT"], "OPTIONS": dict(primary["OPTIONS"])}
    server = PgBouncer(primary)
    connections["default"].close()
    primary["HOST"], primary["PORT"] = str(server.base), server.PORT
    primary["OPTIONS"].pop("host", None)
    primary["OPTIONS"].pop("options", None)  # AIMONITOR_STATEMENT_TIMEOUT_MS=0
    try:
        yield server
    finally:
        connections["default"].close()
        primary.update(HOST=saved["HOST"], PORT=saved["PORT"])
        primary["OPTIONS"].clear()
        primary["OPTIONS"].update(saved["OPTIONS"])
        server.remove()


def transactions(bouncer) -> int:
    return bouncer.stats(connections["default"].settings_dict["NAME"]).get("total_xact_count", 0)


def test_pages_exports_and_writes_work_through_pgbouncer(client, bob, bouncer):
    before = transactions(bouncer)
    failed = make_run(site_id=1, status="failed", app_type="app3_clue")
    make_run(site_id=1, app_type="app3_clue")
    job = make_job(site_id=1, status="failed")

    response = client.post(
        "/accounts/login/", {"username": "bob", "password": PASSWORD, "next": "/"}, follow=True
    )
    assert response.status_code == 200 and response.context["user"] == bob
    for url in ("/", "/dashboard.json", "/runs/", "/jobs/", "/cache/", "/alerts/"):
        assert client.get(url).status_code == 200, url
    assert client.get("/dashboard.json").json()["today_calls"] == 2

    export = client.get("/runs/", {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 2

    assert client.post(f"/alerts/{failed.pk}/ack/").status_code == 302
    assert RunLog.objects.get(pk=failed.pk).alert_status == "acknowledged"
    assert client.post(f"/jobs/{job.pk}/retry/").status_code == 302
    assert TriggerJob.objects.filter(is_forced=True, status="pending").count() == 1
    assert AuditEvent.objects.count() == 2
    assert transactions(bouncer) > before  # it all went through PgBouncer


def test_logins_fail_and_succeed_through_pgbouncer(client, bob, bouncer):
    wrong = client.post("/accounts/login/", {"username": "bob", "password": "nope"})
    assert wrong.status_code == 200 and not wrong.context["user"].is_authenticated
    right = client.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert right.status_code == 302


def test_what_transaction_pooling_does_not_carry(bouncer, db):
    name = connections["default"].settings_dict["NAME"]
    # The startup parameter the console sends when AIMONITOR_STATEMENT_TIMEOUT_MS > 0.
    with pytest.raises(psycopg2.OperationalError, match="unsupported startup parameter: options"):
        bouncer.connect(name, options="-c statement_timeout=10000")
    # A session-level SET stays on the server connection, which the next client gets:
    # hence SET LOCAL inside a transaction everywhere (rollup_runs, seed_demo).
    a, b = bouncer.connect(name), bouncer.connect(name)
    try:
        with a.cursor() as first, b.cursor() as second:
            first.execute("SET statement_timeout = 1234")
            seen = set()
            for _ in range(4):
                second.execute("SHOW statement_timeout")
                seen.add(second.fetchone()[0])
            first.execute("RESET statement_timeout")
            # b was given a's server connection (PgBouncer reuses the last one released).
            assert "1234ms" in seen
            a.autocommit = False
            first.execute("SET LOCAL statement_timeout = 4321")
            a.commit()
            first.execute("SHOW statement_timeout")
            assert first.fetchone()[0] != "4321ms"
    finally:
        a.close()
        b.close()
