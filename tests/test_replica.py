"""Reads on a real streaming replica (SPEC.md §11, aimonitor/db_router.py).

The module starts a hot standby of the test server (``pg_basebackup -R``, the same
binaries) and points the ``replica`` alias at it. Pausing its replay
(``pg_wal_replay_pause()``) holds it at an older state for as long as a test needs:
what a page shows then is what it would show while the replica lags.

The copy is of the whole test server (in CI: the test databases only); a local server
that also holds large bench databases makes the copy take as long as they are large.
"""

from __future__ import annotations

import logging
import time

import pytest
from django.db import connections

from aimonitor import db_router
from aimonitor.models import AuditEvent, CacheEntry, RunLog, SiteAccess, TriggerJob
from tests.conftest import client_for, make_cache, make_job, make_run
from tests.pg_servers import Replica

pytestmark = pytest.mark.django_db(databases=["default", "replica"], transaction=True)


@pytest.fixture(scope="module")
def replica(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        server = Replica(connections["default"].settings_dict)
    connections.settings[db_router.REPLICA] = server.settings()
    db_router.forget_failures()
    try:
        yield server
    finally:
        connections[db_router.REPLICA].close()
        del connections[db_router.REPLICA]
        del connections.settings[db_router.REPLICA]
        server.remove()


@pytest.fixture
def synced(replica):
    """The replica up to date and replaying at the start and the end of each test."""
    if not replica.running():
        replica.start()
    db_router.forget_failures()
    replica.resume()
    replica.catch_up()
    yield replica
    if replica.running():
        replica.resume()
        replica.catch_up()


def test_reads_of_the_ai_tables_go_to_the_replica_and_the_rest_to_the_primary(synced):
    for model in (RunLog, TriggerJob, CacheEntry):
        assert db_router.read_alias(model) == "replica"
        assert db_router.ReplicaRouter().db_for_write(model) == "default"
    for model in (SiteAccess, AuditEvent):
        assert db_router.read_alias(model) == "default"
    with connections["default"].cursor():
        from django.db import transaction

        with transaction.atomic():  # a domain operation reads what it changes
            assert db_router.read_alias(RunLog) == "default"


def test_pages_show_the_replicas_state_while_it_lags(client, bob, synced):
    seen = make_run(site_id=1, member_id=111)
    synced.catch_up()
    synced.pause()
    late = make_run(site_id=1, member_id=222)
    client_for(client, bob)

    page = client.get("/runs/").content.decode()
    assert f"/runs/{seen.pk}/" in page
    assert f"/runs/{late.pk}/" not in page  # written on the primary, not replayed yet
    assert client.get(f"/runs/{late.pk}/").status_code == 404

    synced.resume()
    synced.catch_up()
    assert f"/runs/{late.pk}/" in client.get("/runs/").content.decode()
    assert client.get(f"/runs/{late.pk}/").status_code == 200


def test_csv_exports_read_the_replica(client, bob, synced):
    make_run(site_id=1, member_id=111)
    synced.catch_up()
    synced.pause()
    make_run(site_id=1, member_id=222)
    client_for(client, bob)

    export = client.get("/runs/", {"format": "csv"})
    text = b"".join(export.streaming_content).decode()

    assert export.status_code == 200
    assert len(text.strip().splitlines()) == 2  # the header and the replayed call only


def test_dashboard_figures_read_the_replica(client, bob, synced):
    make_run(site_id=1)
    make_run(site_id=1)
    synced.catch_up()
    synced.pause()
    make_run(site_id=1)
    client_for(client, bob)

    assert client.get("/dashboard.json").json()["today_calls"] == 2
    synced.resume()
    synced.catch_up()
    assert client.get("/dashboard.json").json()["today_calls"] == 3
    # The refresh of the summaries wrote on the primary meanwhile.
    assert client.get("/").status_code == 200


def test_after_a_write_the_persons_reads_stick_to_the_primary(client, bob, synced, settings):
    settings.REPLICA_STICKY_SECONDS = 2
    original = make_job(site_id=1, status="failed")
    synced.catch_up()
    synced.pause()
    client_for(client, bob)

    response = client.post(f"/jobs/{original.pk}/retry/", follow=True)

    copy = TriggerJob.objects.using("default").exclude(pk=original.pk).get()
    assert response.status_code == 200  # the new job's page, read from the primary
    assert response.redirect_chain == [(f"/jobs/{copy.pk}/", 302)]
    assert db_router.STICKY_COOKIE in response.cookies or db_router.STICKY_COOKIE in client.cookies
    row = f'<a href="/jobs/{copy.pk}/?back=list">#{copy.pk}</a>'
    assert row in client.get("/jobs/").content.decode()

    time.sleep(3.1)  # the mark expired: reads go back to the (still lagging) replica
    assert row not in client.get("/jobs/").content.decode()
    assert client.get(f"/jobs/{copy.pk}/").status_code == 404


def test_without_the_sticky_mark_a_fresh_write_is_not_on_the_lagging_replica(
    client, bob, synced, settings
):
    settings.REPLICA_STICKY_SECONDS = 0
    original = make_job(site_id=1, status="failed")
    synced.catch_up()
    synced.pause()
    client_for(client, bob)

    response = client.post(f"/jobs/{original.pk}/retry/")

    copy = TriggerJob.objects.using("default").exclude(pk=original.pk).get()
    assert response.status_code == 302
    assert db_router.STICKY_COOKIE not in response.cookies
    assert client.get(f"/jobs/{copy.pk}/").status_code == 404  # why the mark exists


def test_a_cache_invalidation_is_seen_by_its_author_at_once(client, bob, synced):
    entry = make_cache(site_id=1, cache_type="app3_clue", target_id="42")
    synced.catch_up()
    synced.pause()
    client_for(client, bob)

    data = {"site": 1, "cache_type": "app3_clue", "member_id": 42}
    preview = client.post("/cache/", data)  # the confirmation carries the ids it counted
    response = client.post("/cache/", {**data, "ids": preview.context["ids"], "confirm": "yes"})

    assert response.status_code == 302
    assert CacheEntry.objects.using("default").get(pk=entry.pk).status == "invalidated"
    assert CacheEntry.objects.using("replica").get(pk=entry.pk).status == "valid"
    page = client.get("/cache/?site=1&status=invalidated").content.decode()
    assert f"#{entry.pk}<" in page  # the author's read went to the primary


def test_a_stopped_replica_degrades_to_the_primary_with_a_log_line(client, bob, synced, caplog):
    run = make_run(site_id=1, status="failed")
    job = make_job(site_id=1)
    client_for(client, bob)
    assert client.get("/runs/").status_code == 200  # a connection to the replica is open
    synced.stop()

    with caplog.at_level(logging.WARNING, logger="aimonitor.db_router"):
        pages = {url: client.get(url) for url in ("/", "/runs/", "/jobs/", "/cache/", "/alerts/")}
        data = client.get("/dashboard.json")

    assert {url: r.status_code for url, r in pages.items()} == dict.fromkeys(pages, 200)
    assert data.status_code == 200 and data.json()["today_calls"] == 1
    assert f"/runs/{run.pk}/" in pages["/runs/"].content.decode()
    assert f"/jobs/{job.pk}/" in pages["/jobs/"].content.decode()
    warnings = [r for r in caplog.records if r.name == "aimonitor.db_router"]
    assert len(warnings) == 1  # once, then the primary for RETRY_SECONDS
    assert "Replica unavailable" in warnings[0].getMessage()
