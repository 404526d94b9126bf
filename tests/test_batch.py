"""Batch run /batch/: estimate, confirm exactly once, cancel, expiry, budget, access."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from aimonitor.models import AuditEvent, OnceToken, PendingBatch, SiteAccess, TriggerJob
from tests.conftest import client_for, make_job, make_run

BATCH_ID = re.compile(r'name="batch_id" value="([0-9a-f]{32})"')


@pytest.fixture
def apps_seen(db):
    """Two apps called recently in site 1; one only long ago; one only in site 3."""
    make_run(site_id=1, app_type="app3_clue", tokens_used=0)
    make_run(site_id=1, app_type="app1_chat", tokens_used=0)
    make_run(site_id=1, app_type="app9_old", created_at=timezone.now() - dt.timedelta(days=40))
    make_run(site_id=3, app_type="app7_elsewhere", tokens_used=0)


@pytest.fixture
def budget(settings):
    settings.AVG_TOKENS_PER_CALL = 2000
    settings.DAILY_TOKEN_LIMIT = 100_000
    settings.TOKEN_PRICE_PER_1K = None
    settings.BATCH_TTL_SECONDS = 600
    return settings


def estimate(client, site=1, app_types=("app1_chat", "app3_clue"), member_ids="101, 102 103"):
    """Step 1: post the form; return the response and the batch id it offers to confirm."""
    response = client.post(
        "/batch/", {"site": site, "app_types": list(app_types), "member_ids": member_ids}
    )
    match = BATCH_ID.search(response.text)
    return response, match.group(1) if match else None


def metric(response, name: str) -> str:
    match = re.search(rf'data-metric="{name}" data-value="([^"]*)"', response.text)
    assert match, f"no {name} on the page"
    return match.group(1)


def pending(client, batch_id):
    """The batch as kept for this client's session, or None."""
    return PendingBatch.objects.filter(
        batch_id=batch_id, session_key=client.session.session_key
    ).first()


def nothing_written():
    return (
        not TriggerJob.objects.exists()
        and not AuditEvent.objects.exists()
        and not OnceToken.objects.exists()
    )


# --- Step 1: the form and the estimate ----------------------------------------


def test_form_offers_the_apps_seen_recently_in_the_users_sites(client, alice, apps_seen):
    response = client_for(client, alice).get("/batch/")
    assert response.status_code == 200
    assert 'name="app_types" value="app1_chat"' in response.text
    assert 'name="app_types" value="app3_clue"' in response.text
    assert "app9_old" not in response.text  # older than 30 days
    assert "app7_elsewhere" not in response.text  # another site
    assert 'name="member_ids"' in response.text
    assert '<option value="2">' in response.text


def test_estimate_arithmetic_with_a_price(client, alice, apps_seen, budget):
    budget.TOKEN_PRICE_PER_1K = Decimal("0.5")
    # Today's budget counts successful calls of every site, not failed ones.
    make_run(site_id=1, tokens_used=10_000)
    make_run(site_id=3, tokens_used=5_000)
    make_run(site_id=1, tokens_used=7_000, status="failed")
    make_run(site_id=1, tokens_used=9_000, created_at=timezone.now() - dt.timedelta(days=2))

    response, batch_id = estimate(client_for(client, alice), member_ids="101\n102,103 104")

    assert response.status_code == 200
    assert batch_id
    assert metric(response, "members") == "4"
    assert metric(response, "calls") == "8"  # 2 apps × 4 members
    assert metric(response, "tokens") == "16000"  # × 2000
    assert Decimal(metric(response, "cost")) == Decimal("8")  # 16 × 0.5
    assert metric(response, "remaining") == "85000"  # 100,000 − 15,000
    assert metric(response, "left_after") == "69000"
    assert "16,000" in response.text
    assert "over today’s budget" not in response.text
    assert 'name="over_budget_ok"' not in response.text
    assert 'action="/batch/confirm/"' in response.text
    assert 'action="/batch/cancel/"' in response.text
    # Nothing is written before the confirm; the estimate waits for this session.
    assert nothing_written()
    assert pending(client, batch_id) is not None


def test_no_cost_without_a_price(client, alice, apps_seen, budget):
    response, _ = estimate(client_for(client, alice))
    assert response.status_code == 200
    assert 'data-metric="cost"' not in response.text


def test_duplicates_are_dropped_and_counted(client, alice, apps_seen, budget):
    response, batch_id = estimate(client_for(client, alice), member_ids="5, 6\n6 7 5,,5")
    assert metric(response, "members") == "3"
    assert "3 duplicates dropped" in response.text
    assert pending(client, batch_id).member_ids == [5, 6, 7]


def test_member_list_shows_fifty_then_counts_the_rest(client, alice, apps_seen, budget):
    ids = " ".join(str(n) for n in range(1000, 1080))
    response, _ = estimate(client_for(client, alice), member_ids=ids)
    assert "1049" in response.text
    assert "1050" not in response.text
    assert "and 30 more" in response.text


def test_malformed_member_ids_are_named(client, alice, apps_seen):
    response, batch_id = estimate(
        client_for(client, alice), member_ids="7, abc, -3, 1.5, 0, 99999999999999999999"
    )
    assert response.status_code == 400
    assert batch_id is None
    assert "Not positive integers: abc, -3, 1.5, 0" in response.text
    assert "Too large for a member id: 99999999999999999999" in response.text
    assert not PendingBatch.objects.exists()


def test_more_than_5000_members_is_refused(client, alice, apps_seen):
    ids = ",".join(str(n) for n in range(1, 5002))
    response, _ = estimate(client_for(client, alice), member_ids=ids)
    assert response.status_code == 400
    assert "At most 5,000 members per batch; you gave 5,001." in response.text


def test_at_least_one_app_and_one_member(client, alice, apps_seen):
    response, _ = estimate(client_for(client, alice), app_types=(), member_ids=" ,\n ")
    assert response.status_code == 400
    assert "Choose at least one app." in response.text
    assert "Enter at least one member id." in response.text


def test_an_app_not_offered_is_bad_input(client, alice, apps_seen):
    response, _ = estimate(client_for(client, alice), app_types=("app9_old",))
    assert response.status_code == 400
    assert "app9_old is not one of the available choices" in response.text


def test_another_site_is_refused(client, alice, apps_seen):
    response, _ = estimate(client_for(client, alice), site=3)
    assert response.status_code == 403
    assert not PendingBatch.objects.exists()


# --- Step 2: confirm ----------------------------------------------------------


def test_confirm_creates_one_pending_forced_job_per_member(client, alice, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client, site=2, member_ids="101 102 103")

    response = client.post("/batch/confirm/", {"batch_id": batch_id})

    assert response.status_code == 302
    assert response["Location"] == f"/jobs/?batch={batch_id}"
    jobs = list(TriggerJob.objects.order_by("member_id"))
    assert [job.member_id for job in jobs] == [101, 102, 103]
    for job in jobs:
        assert job.site_id == 2
        assert job.event_type == "admin_batch"
        assert job.app_chain == "app1_chat,app3_clue"  # in the order offered
        assert job.is_forced is True
        assert job.status == "pending"
        assert job.connector_type == "feiqiu"
        assert job.payload == {"batch_id": batch_id, "requested_by": "alice"}
        assert job.created_at is not None
    event = AuditEvent.objects.get()
    assert event.action == "batch"
    assert event.actor == alice
    assert event.target_table == "ai_trigger_jobs"
    assert event.target_ids == sorted(job.id for job in jobs)
    assert event.site_id == 2
    assert event.details["batch_id"] == batch_id
    assert event.details["apps"] == ["app1_chat", "app3_clue"]
    assert event.details["members"] == 3
    assert event.details["estimated_tokens"] == 12_000
    assert pending(client, batch_id) is None
    page = client.get("/batch/")
    assert "Batch confirmed: 3 jobs created." in page.text


def test_a_second_confirm_creates_nothing_more(client, alice, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client)
    assert client.post("/batch/confirm/", {"batch_id": batch_id}).status_code == 302

    again = client.post("/batch/confirm/", {"batch_id": batch_id})
    assert again.status_code == 409
    assert "already used" in again.text
    # Another session of the same admin (the entry is only in the first) learns the same.
    other = client_for(Client(), alice).post("/batch/confirm/", {"batch_id": batch_id})
    assert other.status_code == 409
    assert "already used" in other.text
    assert TriggerJob.objects.count() == 3
    assert AuditEvent.objects.count() == 1


def test_an_expired_batch_creates_nothing(client, alice, apps_seen, budget):
    budget.BATCH_TTL_SECONDS = 1
    client_for(client, alice)
    _, batch_id = estimate(client)
    time.sleep(1.1)

    response = client.post("/batch/confirm/", {"batch_id": batch_id})

    assert response.status_code == 400
    assert "expired" in response.text
    assert nothing_written()


def test_an_estimate_edited_past_its_expiry_creates_nothing(client, alice, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client)
    PendingBatch.objects.filter(batch_id=batch_id).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )

    response = client.post("/batch/confirm/", {"batch_id": batch_id})

    assert response.status_code == 400
    assert "expired" in response.text
    assert nothing_written()


def test_an_unknown_batch_creates_nothing(client, alice, apps_seen):
    client_for(client, alice)
    for batch_id in (uuid.uuid4().hex, "not-a-batch", ""):
        response = client.post("/batch/confirm/", {"batch_id": batch_id})
        assert response.status_code == 400
        assert "This batch is unknown" in response.text
    assert nothing_written()


def test_cancel_drops_the_batch_for_good(client, alice, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client)

    response = client.post("/batch/cancel/", {"batch_id": batch_id}, follow=True)

    assert response.redirect_chain == [("/batch/", 302)]
    assert "Batch cancelled" in response.text
    assert pending(client, batch_id) is None
    confirm = client.post("/batch/confirm/", {"batch_id": batch_id})
    assert confirm.status_code == 409
    assert "This batch was cancelled" in confirm.text
    assert not TriggerJob.objects.exists()
    assert not AuditEvent.objects.exists()


def test_cancel_of_a_used_batch_is_refused(client, alice, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client)
    client.post("/batch/confirm/", {"batch_id": batch_id})
    response = client.post("/batch/cancel/", {"batch_id": batch_id})
    assert response.status_code == 409
    assert "already used" in response.text
    assert TriggerJob.objects.count() == 3


def test_over_budget_needs_the_extra_tick(client, alice, apps_seen, budget):
    budget.DAILY_TOKEN_LIMIT = 10_000
    client_for(client, alice)
    response, batch_id = estimate(client)  # 2 apps × 3 members × 2000 = 12,000 tokens
    assert "more than the 10,000 left in today’s budget" in response.text
    assert 'name="over_budget_ok"' in response.text
    assert metric(response, "left_after") == "-2000"

    refused = client.post("/batch/confirm/", {"batch_id": batch_id})
    assert refused.status_code == 400
    assert "tick “Run it anyway”" in refused.text
    assert f'value="{batch_id}"' in refused.text  # the confirmation page again
    assert nothing_written()

    ticked = client.post("/batch/confirm/", {"batch_id": batch_id, "over_budget_ok": "1"})
    assert ticked.status_code == 302
    assert TriggerJob.objects.count() == 3
    assert AuditEvent.objects.get().details["over_budget"] is True


def test_confirm_rechecks_the_site(client, alice, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client, site=2)
    SiteAccess.objects.filter(user=alice).update(site_ids=[1])

    response = client.post("/batch/confirm/", {"batch_id": batch_id})

    assert response.status_code == 403
    assert nothing_written()


# --- Who may do what ------------------------------------------------------------


def test_operator_may_not_launch(client, alice, bob, apps_seen, budget):
    _, batch_id = estimate(client_for(Client(), alice))
    client_for(client, bob)
    assert estimate(client)[0].status_code == 403
    assert client.post("/batch/confirm/", {"batch_id": batch_id}).status_code == 403
    assert client.post("/batch/cancel/", {"batch_id": batch_id}).status_code == 403
    assert nothing_written()


@pytest.mark.parametrize("username", ["bob", "charlie"])
def test_operators_and_viewers_get_a_read_only_page(client, bob, charlie, username):
    user = {"bob": bob, "charlie": charlie}[username]
    response = client_for(client, user).get("/batch/")
    assert response.status_code == 200
    assert "Only admins may launch batch runs." in response.text
    assert 'name="member_ids"' not in response.text


def test_login_required(client):
    response = client.get("/batch/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_wrong_methods(client, alice):
    client_for(client, alice)
    assert client.get("/batch/confirm/").status_code == 405
    assert client.get("/batch/cancel/").status_code == 405
    assert client.put("/batch/").status_code == 405
    assert client.delete("/batch/").status_code == 405


# --- Recent batches -----------------------------------------------------------------


def test_recent_batches_show_live_job_counts(client, alice, charlie, apps_seen, budget):
    client_for(client, alice)
    _, batch_id = estimate(client, site=1, member_ids="1 2 3 4")
    client.post("/batch/confirm/", {"batch_id": batch_id})
    jobs = list(TriggerJob.objects.order_by("id"))
    jobs[0].status = "running"
    jobs[0].save()
    jobs[1].status = "success"
    jobs[1].save()
    jobs[2].status = "failed"
    jobs[2].save()
    make_job(site_id=1, status="pending", payload={"batch_id": "someone-elses"})

    response = client.get("/batch/")

    row = re.search(rf'<tr data-batch="{batch_id}">(.*?)</tr>', response.text, re.S).group(1)
    assert "alice" in row
    assert "Site 1" in row
    assert "app1_chat, app3_clue" in row
    for name in ("pending", "running", "success", "failed"):
        assert f'data-metric="{name}" data-value="1"' in row
    assert f'href="/jobs/?batch={batch_id}"' in row
    # Charlie (site 2) does not see a batch of site 1.
    assert batch_id not in client_for(Client(), charlie).get("/batch/").text


def test_recent_batches_take_a_fixed_number_of_queries(
    client, alice, apps_seen, budget, django_assert_max_num_queries
):
    client_for(client, alice)

    def run_batches(n):
        for _ in range(n):
            _, batch_id = estimate(client)
            client.post("/batch/confirm/", {"batch_id": batch_id})

    run_batches(1)
    with django_assert_max_num_queries(20) as one:
        client.get("/batch/")
    run_batches(4)
    with django_assert_max_num_queries(20) as five:
        response = client.get("/batch/")
    assert len(five.captured_queries) == len(one.captured_queries)
    assert response.text.count("<tr data-batch=") == 5


def test_htmx_refresh_returns_only_the_recent_batches(client, alice):
    response = client_for(client, alice).get("/batch/", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert 'id="recent-batches"' in response.text
    assert "<html" not in response.text
    assert 'name="member_ids"' not in response.text


# --- Exactly once, for real --------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_confirms_at_the_same_moment_create_one_set(transactional_db, alice, budget):
    budget.DAILY_TOKEN_LIMIT = 10**9
    make_run(site_id=1, app_type="app1_chat", tokens_used=0)
    first = client_for(Client(), alice)
    members = " ".join(str(n) for n in range(1, 2001))
    _, batch_id = estimate(first, app_types=("app1_chat",), member_ids=members)
    assert batch_id
    second = Client()
    second.cookies = first.cookies  # the same session: two tabs of one browser
    barrier = threading.Barrier(2)
    statuses = []

    def confirm(browser):
        try:
            barrier.wait(timeout=10)
            statuses.append(browser.post("/batch/confirm/", {"batch_id": batch_id}).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(statuses) == [302, 409]
    assert TriggerJob.objects.count() == 2000
    assert TriggerJob.objects.filter(payload__batch_id=batch_id).count() == 2000
    assert AuditEvent.objects.filter(action="batch").count() == 1
    assert OnceToken.objects.filter(key=f"batch:{batch_id}").count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_decides_when_both_confirms_pass_the_checks(
    transactional_db, alice, budget, monkeypatch
):
    """Both confirms get past every check before either claims: the unique key decides."""
    import aimonitor.operations.batch as batch_operations

    budget.DAILY_TOKEN_LIMIT = 10**9
    make_run(site_id=1, app_type="app1_chat", tokens_used=0)
    first = client_for(Client(), alice)
    _, batch_id = estimate(first, app_types=("app1_chat",), member_ids="1 2 3 4 5")
    second = Client()
    second.cookies = first.cookies
    at_claim = threading.Barrier(2)
    real_claim_once = batch_operations.claim_once

    def claim_together(*args, **kwargs):
        at_claim.wait(timeout=10)
        return real_claim_once(*args, **kwargs)

    monkeypatch.setattr(batch_operations, "claim_once", claim_together)
    responses = []

    def confirm(browser):
        try:
            responses.append(browser.post("/batch/confirm/", {"batch_id": batch_id}))
        finally:
            connection.close()

    threads = [threading.Thread(target=confirm, args=(c,)) for c in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(r.status_code for r in responses) == [302, 409]
    loser = next(r for r in responses if r.status_code == 409)
    assert "already used" in loser.text
    assert TriggerJob.objects.count() == 5
    assert AuditEvent.objects.filter(action="batch").count() == 1


def test_the_site_picked_in_the_top_bar_is_the_default(client, alice, apps_seen):
    response = client_for(client, alice).get("/batch/", {"site": 2})
    form = response.text.split('class="card batch-form"')[1]
    assert '<option value="2" selected>' in form
