"""Trigger jobs: /jobs/ (filters, batch, skipped count, CSV, bulk retry), /jobs/<id>/ and
POST /jobs/<id>/retry/ (one forced copy, audited, double-submit safe), and the admin action."""

from __future__ import annotations

import csv
import datetime as dt
import html
import io
import threading
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aimonitor.localtime import local_day_bounds
from aimonitor.models import AuditEvent, OnceToken, TriggerJob
from tests.conftest import client_for, make_job, make_user

TABLE = f'"{TriggerJob._meta.db_table}"'


def sql_ids(where: str = "TRUE", params=()) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {TABLE} WHERE {where} ORDER BY created_at DESC, id DESC", params
        )
        return [row[0] for row in cursor.fetchall()]


def job_count() -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE}")
        return cursor.fetchone()[0]


def page_ids(response) -> list[int]:
    return [job.pk for job in response.context["page"].object_list]


def retry_events():
    return AuditEvent.objects.filter(action="retry", target_table="ai_trigger_jobs")


@pytest.fixture
def jobs(db):
    start, _ = local_day_bounds(timezone.localdate())
    return [
        make_job(site_id=1, event_type="consumption", status="success", member_id=7),
        make_job(site_id=1, event_type="recharge", status="failed", error_message="boom"),
        make_job(site_id=1, status="skipped_duplicate", member_id=7),
        make_job(site_id=1, status="skipped_duplicate", created_at=start - dt.timedelta(hours=1)),
        make_job(site_id=2, status="skipped_duplicate", is_forced=True),
        make_job(site_id=3, status="skipped_duplicate"),
        make_job(
            site_id=1,
            event_type="admin_batch",
            is_forced=True,
            status="pending",
            payload={"batch_id": "b1", "requested_by": "alice"},
        ),
        make_job(
            site_id=2,
            event_type="admin_batch",
            is_forced=True,
            status="pending",
            payload={"batch_id": "b1", "requested_by": "alice"},
        ),
        make_job(site_id=1, payload={"batch_id": "b2"}),
        make_job(site_id=1, payload=None),
    ]


# --- The list -----------------------------------------------------------------


@pytest.mark.parametrize(
    "params,where,sql_params",
    [
        ({}, "TRUE", []),
        ({"event_type": "recharge"}, "event_type = %s", ["recharge"]),
        ({"status": "skipped_duplicate"}, "status = %s", ["skipped_duplicate"]),
        ({"member_id": "7"}, "member_id = %s", [7]),
        ({"is_forced": "true"}, "is_forced", []),
        ({"is_forced": "false"}, "NOT is_forced", []),
        ({"batch": "b1"}, "payload ->> 'batch_id' = %s", ["b1"]),
        ({"batch": "b1", "site": "2"}, "payload ->> 'batch_id' = %s AND site_id = 2", ["b1"]),
        ({"site": "1", "status": "pending"}, "site_id = 1 AND status = %s", ["pending"]),
    ],
)
def test_filters_select_the_same_rows_as_sql(client, alice, jobs, params, where, sql_params):
    response = client_for(client, alice).get("/jobs/", params)
    expected = sql_ids(f"site_id IN (1, 2) AND {where}", sql_params)
    assert response.status_code == 200
    assert page_ids(response) == expected
    assert response.context["page"].count == len(expected)


def test_date_filter(client, alice, jobs):
    yesterday = timezone.localdate() - dt.timedelta(days=1)
    response = client_for(client, alice).get(
        "/jobs/", {"date_from": yesterday, "date_to": yesterday}
    )
    assert page_ids(response) == [jobs[3].pk]


def test_batch_filter_shows_its_heading(client, alice, jobs):
    response = client_for(client, alice).get("/jobs/", {"batch": "b1"})
    assert "Batch b1" in response.text
    assert "Batch b1" not in client.get("/jobs/").text


def test_skipped_duplicates_today_within_scope_and_site(client, alice, bob, jobs):
    # Today: site 1 has one, site 2 one, site 3 one (invisible); yesterday's does not count.
    page = client_for(client, alice).get("/jobs/")
    assert 'data-metric="today_skipped_duplicates" data-value="2"' in page.text
    page = client.get("/jobs/", {"site": 2})
    assert 'data-metric="today_skipped_duplicates" data-value="1"' in page.text
    page = client_for(client, bob).get("/jobs/")
    assert 'data-metric="today_skipped_duplicates" data-value="1"' in page.text


def test_csv_is_the_filtered_rows(client, alice, jobs):
    response = client_for(client, alice).get("/jobs/", {"batch": "b1", "format": "csv"})
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["id"]) for row in rows] == sql_ids(
        "site_id IN (1, 2) AND payload ->> 'batch_id' = 'b1'"
    )


@pytest.mark.parametrize(
    "params",
    [
        {"member_id": "abc"},
        {"is_forced": "maybe"},
        {"batch": "b 1"},
        {"batch": "b" * 65},
        {"event_type": "x" * 65},
        {"status": "x" * 33},
        {"date_to": "2026-02-30"},
        {"site": "-1"},
    ],
)
def test_bad_filter_values_are_400(client, alice, params):
    response = client_for(client, alice).get("/jobs/", params)
    assert response.status_code == 400
    assert 'class="errorlist' in response.text


def test_other_site_filter_is_403(client, bob, jobs):
    assert client_for(client, bob).get("/jobs/", {"site": 2}).status_code == 403


# --- Detail ---------------------------------------------------------------------


def test_detail_shows_payload_timings_steps_and_error(client, alice, db):
    created = timezone.now() - dt.timedelta(minutes=5)
    job = make_job(
        site_id=1,
        payload={"amount": 10, "note": "充值"},
        app_chain="app3_clue, app2_summary",
        status="failed",
        error_message="chain broke",
        created_at=created,
        started_at=created + dt.timedelta(seconds=2),
        finished_at=created + dt.timedelta(seconds=5),
    )
    response = client_for(client, alice).get(f"/jobs/{job.pk}/")
    assert response.status_code == 200
    text = html.unescape(response.text)
    assert '"note": "充值"' in text and '{\n  "amount": 10,' in text
    assert "chain broke" in text
    assert "<li>app3_clue</li><li>app2_summary</li>" in text
    assert 'data-metric="total_ms" data-value="5000"' in text
    assert "2,000 ms" in text and "3,000 ms" in text


@pytest.mark.parametrize("path", ["/jobs/999999999999999999/", "/jobs/999999999999999999999/"])
def test_bad_ids_are_404(client, alice, path):
    assert client_for(client, alice).get(path).status_code == 404


def test_other_site_job_is_404(client, bob, db):
    job = make_job(site_id=2)
    assert client_for(client, bob).get(f"/jobs/{job.pk}/").status_code == 404


def test_viewer_sees_no_retry_button(client, charlie, db):
    job = make_job(site_id=2)
    text = client_for(client, charlie).get(f"/jobs/{job.pk}/").text
    assert f"/jobs/{job.pk}/retry/" not in text
    assert 'name="ids"' not in client.get("/jobs/").text


# --- Retry ----------------------------------------------------------------------


def test_retry_creates_a_forced_pending_copy_and_audits_it(client, bob, db):
    original = make_job(
        site_id=1,
        event_type="recharge",
        member_id=99,
        connector_type="other",
        payload={"amount": 5},
        app_chain="app3_clue",
        status="failed",
        created_at=timezone.now() - dt.timedelta(days=2),
    )
    client_for(client, bob)
    page = client.get(f"/jobs/{original.pk}/")
    key = page.context["retry_key"]
    response = client.post(f"/jobs/{original.pk}/retry/", {"key": key})
    copy = TriggerJob.objects.exclude(pk=original.pk).get()
    assert response.status_code == 302 and response.url == f"/jobs/{copy.pk}/"
    assert (copy.event_type, copy.member_id, copy.site_id) == ("recharge", 99, 1)
    assert (copy.connector_type, copy.payload, copy.app_chain) == (
        "other",
        {"amount": 5},
        "app3_clue",
    )
    assert copy.is_forced and copy.status == "pending"
    assert timezone.now() - copy.created_at < dt.timedelta(minutes=1)
    original.refresh_from_db()
    assert original.status == "failed" and not original.is_forced  # untouched
    event = retry_events().get()
    assert event.actor == bob and event.actor_username == "bob"
    assert event.target_ids == sorted([original.pk, copy.pk])
    assert event.site_id == 1
    assert event.details == {"retry_of": original.pk, "new_job_id": copy.pk}
    # The history, on both pages.
    assert (
        f'Retried as <a href="/jobs/{copy.pk}/">#{copy.pk}</a> by bob'
        in client.get(f"/jobs/{original.pk}/").text
    )
    assert (
        f'Retry of <a href="/jobs/{original.pk}/">#{original.pk}</a>'
        in client.get(f"/jobs/{copy.pk}/").text
    )
    assert f"retried as #{copy.pk}" in client.get("/jobs/").text


def test_double_submitted_retry_creates_one_job(client, bob, db):
    original = make_job(site_id=1)
    key = uuid.uuid4().hex
    client_for(client, bob)
    client.post(f"/jobs/{original.pk}/retry/", {"key": key})
    second = client.post(f"/jobs/{original.pk}/retry/", {"key": key}, follow=True)
    assert job_count() == 2
    assert retry_events().count() == 1
    new_id = TriggerJob.objects.exclude(pk=original.pk).get().pk
    assert f"Already retried as #{new_id}" in second.text
    assert OnceToken.objects.get(key=f"retry:{key}").result == {
        "new_ids": {str(original.pk): new_id},
        "new_job_id": new_id,
    }


def test_retry_without_key_is_still_refused_the_second_time(client, bob, db):
    # No one-time key: the second retry is the "already retried" rule's (SPEC.md §9).
    original = make_job(site_id=1)
    client_for(client, bob)
    client.post(f"/jobs/{original.pk}/retry/")
    assert client.post(f"/jobs/{original.pk}/retry/").status_code == 409
    assert job_count() == 2
    client.post(f"/jobs/{original.pk}/retry/", {"again_ok": "1"})
    assert job_count() == 3


def test_retry_refusals(client, bob, charlie, db):
    mine, other = make_job(site_id=1), make_job(site_id=2)
    client_for(client, bob)
    assert client.get(f"/jobs/{mine.pk}/retry/").status_code == 405
    assert client.post(f"/jobs/{other.pk}/retry/").status_code == 404
    assert client.post("/jobs/999999999999999999/retry/").status_code == 404
    assert client.post(f"/jobs/{mine.pk}/retry/", {"key": "not-a-uuid"}).status_code == 400
    client_for(client, charlie)  # a viewer, on their own site
    assert client.post(f"/jobs/{other.pk}/retry/").status_code == 403
    assert job_count() == 2
    assert not retry_events().exists()


def test_retry_needs_login(client, db):
    job = make_job(site_id=1)
    response = client.post(f"/jobs/{job.pk}/retry/")
    assert response.status_code == 302 and "/accounts/login/" in response.url


# --- Bulk retry -------------------------------------------------------------------


def test_bulk_retry_of_selected_jobs_confirms_then_acts(client, alice, db):
    a, b, c = make_job(site_id=1), make_job(site_id=2), make_job(site_id=1)
    hidden = make_job(site_id=3)
    client_for(client, alice)
    ids = [a.pk, b.pk, hidden.pk]  # a forged id of another site is ignored
    confirm = client.post("/jobs/", {"action": "retry", "ids": ids})
    assert confirm.status_code == 200
    assert 'id="retry-count" data-value="2"' in confirm.text
    assert 'name="confirm" value="yes"' in confirm.text
    assert job_count() == 4  # nothing yet
    key = confirm.context["key"]
    done = client.post(
        "/jobs/", {"action": "retry", "ids": ids, "confirm": "yes", "key": key}, follow=True
    )
    assert done.redirect_chain[-1][0] == "/jobs/"
    assert "Retried 2 jobs" in done.text
    copies = TriggerJob.objects.filter(is_forced=True, status="pending")
    assert sorted(copies.values_list("site_id", flat=True)) == [1, 2]
    events = retry_events()
    assert sorted(e.details["retry_of"] for e in events) == sorted([a.pk, b.pk])
    assert {e.site_id for e in events} == {1, 2}
    assert c.pk not in {e.details["retry_of"] for e in events}
    # The same confirmation sent again creates nothing more.
    client.post("/jobs/", {"action": "retry", "ids": ids, "confirm": "yes", "key": key})
    assert copies.count() == 2


def test_bulk_retry_of_everything_matching_the_filter(client, bob, db):
    for _ in range(3):
        make_job(site_id=1, event_type="recharge")
    make_job(site_id=1, event_type="consumption")
    make_job(site_id=2, event_type="recharge")
    client_for(client, bob)
    data = {"action": "retry", "select_across": "1", "event_type": "recharge"}
    confirm = client.post("/jobs/", data)
    assert 'id="retry-count" data-value="3"' in confirm.text
    assert 'name="event_type" value="recharge"' in confirm.text
    # The confirmation carries the ids it counted, and the retry acts on those.
    client.post("/jobs/", {**data, "ids": confirm.context["ids"], "confirm": "yes"})
    expected = sql_ids("site_id = 1 AND event_type = 'recharge' AND is_forced")
    assert len(expected) == 3
    assert retry_events().count() == 3


def test_bulk_retry_over_the_cap_is_refused(client, bob, db):
    now = timezone.now()
    TriggerJob.objects.bulk_create(
        [TriggerJob(site_id=1, event_type="e", created_at=now) for _ in range(1001)]
    )
    client_for(client, bob)
    data = {"action": "retry", "select_across": "1"}
    response = client.post("/jobs/", data)
    assert response.status_code == 400
    assert "at most 1,000 can be retried at once" in response.text
    # A confirmation acts on its ids only: without them, on nothing; over the cap, refused.
    response = client.post("/jobs/", {**data, "confirm": "yes"})
    assert response.status_code == 302
    all_ids = ",".join(map(str, sql_ids("true")))
    response = client.post("/jobs/", {**data, "ids": all_ids, "confirm": "yes"})
    assert response.status_code == 400
    assert job_count() == 1001
    assert not retry_events().exists()


def test_bulk_retry_refusals(client, bob, charlie, db):
    mine = make_job(site_id=1)
    client_for(client, charlie)
    assert client.post("/jobs/", {"action": "retry", "ids": [mine.pk]}).status_code == 403
    client_for(client, bob)
    assert (
        client.post("/jobs/", {"action": "retry", "select_across": "1", "site": 2}).status_code
        == 403
    )
    assert client.post("/jobs/", {"action": "retry", "ids": ["abc"]}).status_code == 400
    assert client.post("/jobs/", {"action": "delete", "ids": [mine.pk]}).status_code == 400
    assert client.post("/jobs/", {"action": "retry", "member_id": "x"}).status_code == 400
    nothing = client.post("/jobs/", {"action": "retry"}, follow=True)
    assert "No jobs were selected" in nothing.text
    assert job_count() == 1


# --- Django admin -------------------------------------------------------------------


def test_admin_action_retries_through_the_same_operation(client, alice, db):
    mine, other = make_job(site_id=1), make_job(site_id=3)
    client_for(client, alice)
    response = client.post(
        "/admin/aimonitor/triggerjob/",
        {"action": "retry_jobs", "_selected_action": [mine.pk, other.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "Retried 1 jobs" in response.text
    event = retry_events().get()
    assert event.details["retry_of"] == mine.pk and event.actor == alice
    assert TriggerJob.objects.filter(is_forced=True, site_id=1).count() == 1
    assert not TriggerJob.objects.filter(site_id=3, is_forced=True).exists()


def test_admin_action_needs_the_retry_permission(client, db):
    staff_viewer = make_user("vic", "viewer", sites=[1])
    staff_viewer.is_staff = True
    staff_viewer.save()
    staff_viewer.user_permissions.add(Permission.objects.get(codename="view_triggerjob"))
    job = make_job(site_id=1)
    client_for(client, staff_viewer)
    changelist = client.get("/admin/aimonitor/triggerjob/")
    assert changelist.status_code == 200 and "retry_jobs" not in changelist.text
    client.post(
        "/admin/aimonitor/triggerjob/", {"action": "retry_jobs", "_selected_action": [job.pk]}
    )
    assert job_count() == 1
    assert not retry_events().exists()


@pytest.mark.django_db(transaction=True)
def test_two_retry_submits_at_the_same_moment_create_one_job(transactional_db, monkeypatch):
    """Both submits pass every check before either claims the key: the database decides."""
    import aimonitor.operations.jobs as job_operations

    bob = make_user("bob", "operator", sites=[1])
    original = make_job(site_id=1)
    key = uuid.uuid4().hex
    first = client_for(Client(), bob)
    second = Client()
    second.cookies = first.cookies  # one browser, the form sent twice
    at_claim = threading.Barrier(2)
    real_claim_once = job_operations.claim_once

    def claim_together(*args, **kwargs):
        at_claim.wait(timeout=10)
        return real_claim_once(*args, **kwargs)

    monkeypatch.setattr(job_operations, "claim_once", claim_together)
    statuses = []

    def submit(browser):
        try:
            statuses.append(browser.post(f"/jobs/{original.pk}/retry/", {"key": key}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert statuses == [302, 302]
    assert job_count() == 2
    assert retry_events().count() == 1


@pytest.mark.parametrize("path", ["/jobs/", "/jobs/?status=failed&page_size=100"])
def test_list_runs_a_fixed_number_of_queries(client, alice, path):
    client_for(client, alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    original = make_job(site_id=1, status="failed")
    client.post(f"/jobs/{original.pk}/retry/")
    queries()  # shows (and so consumes) the retry's message
    few = queries()
    for _ in range(40):
        make_job(site_id=1, status="failed")
        make_job(site_id=2, status="failed")
    assert queries() == few
