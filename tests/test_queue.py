"""Jobs as a queue (SPEC.md §9, issue #14; issue #12.4 for the jobs' bulk confirmation).

The retry rules in the one domain operation (unfinished jobs refused with 409, an
already-retried job left out unless ``again_ok``, one copy when two operators race),
the ``retried`` and ``stuck`` filters against SQL, the queue's health panel against a
raw-SQL oracle, and every action returning to the list with the filters it had.
"""

from __future__ import annotations

import datetime as dt
import importlib
import threading

import pytest
from django.db import connection, connections
from django.test import override_settings
from django.utils import timezone

from aimonitor.figures.queue import health
from aimonitor.localtime import local_day_bounds, local_today
from aimonitor.models import AuditEvent, JobRetry, TriggerJob
from aimonitor.operations import jobs as job_ops
from aimonitor.operations.jobs import retry_job, retry_jobs
from aimonitor.operations.refusals import Conflict as RetryRefused
from aimonitor.scope import Scope
from tests.conftest import client_for, make_job, make_user

TABLE = f'"{TriggerJob._meta.db_table}"'


def sql(query: str, params=()) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query.format(table=TABLE), params)
        return cursor.fetchall()


def copies_of(job_id: int) -> list[int]:
    """The jobs created as retries of ``job_id``, from the audit trail."""
    return sorted(
        event.details["new_job_id"]
        for event in AuditEvent.objects.filter(action="retry", target_ids__contains=[job_id])
        if event.details["retry_of"] == job_id
    )


def page_ids(response) -> list[int]:
    return [job.pk for job in response.context["page"].object_list]


def confirm_bulk(client, data: dict, **extra):
    """The bulk retry's two steps as the pages post them; the final (followed) response."""
    confirm = client.post("/jobs/", {"action": "retry", **data})
    assert confirm.status_code == 200, confirm.content
    return client.post(
        "/jobs/",
        {
            "action": "retry",
            **confirm.context["filter_params"],
            "ids": confirm.context["ids"],
            "key": confirm.context["key"],
            "confirm": "yes",
            **extra,
        },
        follow=True,
    )


# --- The duplicate scenario of issue #14 ----------------------------------------------


def test_retry_all_failed_twice_creates_no_second_copies(client, bob, db):
    failed = [make_job(site_id=1, status="failed") for _ in range(3)]
    make_job(site_id=1, status="success")
    client_for(client, bob)
    first = confirm_bulk(client, {"select_across": "1", "status": "failed"})
    assert "Retried 3 jobs" in first.text
    copies = {job.pk: copies_of(job.pk) for job in failed}
    assert all(len(found) == 1 for found in copies.values())
    # Again: the confirmation says they were retried already and leaves them out.
    again = client.post("/jobs/", {"action": "retry", "select_across": "1", "status": "failed"})
    assert 'id="retry-count" data-value="0"' in again.text
    assert 'id="retry-already" data-value="3"' in again.text
    done = confirm_bulk(client, {"select_across": "1", "status": "failed"})
    assert "Retried 0 jobs" in done.text
    assert "Left out 3 jobs that were already retried" in done.text
    assert {job.pk: copies_of(job.pk) for job in failed} == copies
    assert TriggerJob.objects.count() == 7
    # "retried as #N" in the list and on the job's page.
    listing = client.get("/jobs/", {"status": "failed"}).text
    job = failed[0]
    (copy,) = copies[job.pk]
    assert f"retried as #{copy}" in listing
    detail = client.get(f"/jobs/{job.pk}/").text
    assert f'id="retried-as" data-value="{copy}"' in detail
    assert f"retried as #{copy}" in detail


def test_a_batch_just_launched_offers_nothing_to_retry(client, bob, db):
    for _ in range(2):
        make_job(site_id=1, status="pending", payload={"batch_id": "b-9"})
    client_for(client, bob)
    response = client.post("/jobs/", {"action": "retry", "select_across": "1", "batch": "b-9"})
    assert response.status_code == 409
    assert "The 2 jobs chosen are pending or running" in response.text
    assert 'name="confirm"' not in response.text
    assert TriggerJob.objects.count() == 2


# --- Refusals, each with its message and status -------------------------------------------


@pytest.mark.parametrize("status", ["pending", "running"])
def test_retrying_an_unfinished_job_is_refused(client, bob, db, status):
    job = make_job(site_id=1, status=status)
    client_for(client, bob)
    page = client.get(f"/jobs/{job.pk}/")
    assert 'id="retry-unavailable"' in page.text
    response = client.post(f"/jobs/{job.pk}/retry/")
    assert response.status_code == 409
    label = TriggerJob.Status(status).label
    assert f"Job #{job.pk} is {label}: it has not finished" in response.text
    assert TriggerJob.objects.count() == 1
    assert not AuditEvent.objects.filter(action="retry").exists()
    assert not JobRetry.objects.exists()


def test_retrying_again_needs_again_ok(client, bob, db):
    job = make_job(site_id=1, status="failed")
    client_for(client, bob)
    client.post(f"/jobs/{job.pk}/retry/")
    (copy,) = copies_of(job.pk)
    page = client.get(f"/jobs/{job.pk}/")
    assert 'name="again_ok"' in page.text
    refused = client.post(f"/jobs/{job.pk}/retry/", {"key": page.context["retry_key"]})
    assert refused.status_code == 409
    assert f"Job #{job.pk} was already retried as #{copy}." in refused.text
    assert copies_of(job.pk) == [copy]
    # The refusal did not use up the form's key: ticked, the same form retries.
    again = client.post(
        f"/jobs/{job.pk}/retry/", {"key": page.context["retry_key"], "again_ok": "1"}
    )
    assert again.status_code == 302
    assert len(copies_of(job.pk)) == 2
    assert list(
        JobRetry.objects.filter(original_id=job.pk)
        .order_by("generation")
        .values_list("generation", "copy_id")
    ) == [(1, copy), (2, copies_of(job.pk)[1])]


def test_bulk_again_ok_retries_the_already_retried_too(client, bob, db):
    job = make_job(site_id=1, status="failed")
    client_for(client, bob)
    retry_job(bob, job)
    done = confirm_bulk(client, {"ids": [job.pk]}, again_ok="1")
    assert "Retried 1 job" in done.text
    assert len(copies_of(job.pk)) == 2


def test_bulk_leaves_out_and_counts_each_kind(client, bob, db):
    fresh = make_job(site_id=1, status="failed")
    retried = make_job(site_id=1, status="success")
    pending = make_job(site_id=1, status="pending")
    retry_job(bob, retried)
    client_for(client, bob)
    ids = [fresh.pk, retried.pk, pending.pk]
    confirm = client.post("/jobs/", {"action": "retry", "ids": ids})
    assert 'id="retry-count" data-value="1"' in confirm.text
    assert 'id="retry-already" data-value="1"' in confirm.text
    assert 'id="retry-unfinished" data-value="1"' in confirm.text
    done = confirm_bulk(client, {"ids": ids})
    assert "Retried 1 job as a new forced job." in done.text
    assert "Left out 1 job that was already retried" in done.text
    assert "Left out 1 job that is pending or running" in done.text
    assert len(copies_of(fresh.pk)) == 1 and len(copies_of(retried.pk)) == 1
    assert copies_of(pending.pk) == []


def test_the_operation_refuses_for_every_caller(bob, db):
    pending, done = make_job(site_id=1, status="pending"), make_job(site_id=1, status="failed")
    with pytest.raises(RetryRefused) as refusal:
        retry_job(bob, pending)
    assert refusal.value.status == 409
    retry_job(bob, done)
    with pytest.raises(RetryRefused) as refusal:
        retry_job(bob, done)
    assert refusal.value.status == 409 and "already retried" in refusal.value.message
    left = retry_jobs(bob, [pending.pk, done.pk])
    assert left.new_ids == {} and left.unfinished == [pending.pk]
    assert list(left.already_retried) == [done.pk]


def test_admin_action_follows_the_same_rules(client, alice, db):
    pending, failed = make_job(site_id=1, status="pending"), make_job(site_id=1, status="failed")
    client_for(client, alice)
    for _ in range(2):
        response = client.post(
            "/admin/aimonitor/triggerjob/",
            {"action": "retry_jobs", "_selected_action": [pending.pk, failed.pk]},
            follow=True,
        )
    assert "Left out 1 already retried and 1 pending or running jobs." in response.text
    assert len(copies_of(failed.pk)) == 1 and copies_of(pending.pk) == []


# --- Exactly once under a race ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_operators_retrying_the_same_job_at_once_create_one_copy(bob, alice):
    job = make_job(site_id=1, status="failed")
    start = threading.Barrier(2)
    results: list = [None, None]

    def operator(index, user):
        try:
            start.wait(timeout=10)
            results[index] = retry_jobs(user, [job.pk])
        except Exception as error:  # reported by the asserts below
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=operator, args=(i, u)) for i, u in enumerate((bob, alice))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(isinstance(result, Exception) for result in results), results
    assert sorted(len(result.new_ids) for result in results) == [0, 1]
    assert len(copies_of(job.pk)) == 1
    assert TriggerJob.objects.count() == 2
    assert JobRetry.objects.filter(original_id=job.pk).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_decides_when_both_pass_the_check(bob, alice, monkeypatch):
    # The second operator read "never retried" before the first committed: the unique
    # (original, generation) claim still lets only one copy through.
    job = make_job(site_id=1, status="failed")
    retry_jobs(bob, [job.pk])
    real = job_ops.latest_retries
    calls = []

    def stale(job_ids):
        calls.append(1)
        return {} if len(calls) == 1 else real(job_ids)

    monkeypatch.setattr(job_ops, "latest_retries", stale)
    late = retry_jobs(alice, [job.pk])
    assert late.new_ids == {} and list(late.already_retried) == [job.pk]
    assert len(copies_of(job.pk)) == 1


# --- Filters --------------------------------------------------------------------------


def test_retried_filter_selects_the_same_rows_as_sql(client, alice, db):
    jobs = [make_job(site_id=site, status="failed") for site in (1, 2, 1, 2)]
    retry_jobs(alice, [jobs[0].pk, jobs[1].pk])
    client_for(client, alice)
    retried = {row[0] for row in sql("SELECT original_id FROM aimonitor_jobretry")}
    every = {row[0] for row in sql("SELECT id FROM {table}")}
    yes = client.get("/jobs/", {"retried": "yes", "page_size": 100})
    no = client.get("/jobs/", {"retried": "no", "page_size": 100})
    assert set(page_ids(yes)) == retried == {jobs[0].pk, jobs[1].pk}
    assert set(page_ids(no)) == every - retried
    assert client.get("/jobs/", {"retried": "maybe"}).status_code == 400


@override_settings(STUCK_MINUTES=15)
def test_stuck_filter_selects_the_same_rows_as_sql(client, alice, db):
    now = timezone.now()
    for minutes, status in ((5, "pending"), (20, "pending"), (90, "pending"), (90, "failed")):
        make_job(site_id=1, status=status, created_at=now - dt.timedelta(minutes=minutes))
    client_for(client, alice)
    expected = [
        row[0]
        for row in sql(
            "SELECT id FROM {table} WHERE status = 'pending' "
            "AND created_at < now() - interval '15 minutes' ORDER BY created_at DESC, id DESC"
        )
    ]
    assert len(expected) == 2
    assert page_ids(client.get("/jobs/", {"stuck": "yes"})) == expected


# --- Every action returns to the list with its filters -----------------------------------


def test_bulk_retry_and_its_cancel_keep_the_filters(client, bob, db):
    make_job(site_id=1, status="failed", event_type="recharge")
    client_for(client, bob)
    filters = {"status": "failed", "event_type": "recharge", "site": "1"}
    confirm = client.post("/jobs/", {"action": "retry", "select_across": "1", **filters})
    back = "/jobs/?event_type=recharge&amp;status=failed&amp;site=1"
    assert f'href="{back}"' in confirm.text  # Cancel
    done = confirm_bulk(client, {"select_across": "1", **filters})
    assert done.redirect_chain[-1][0] == "/jobs/?event_type=recharge&status=failed&site=1"
    nothing = client.post("/jobs/", {"action": "retry", **filters})
    assert nothing.url == "/jobs/?event_type=recharge&status=failed&site=1"


def test_single_retry_from_the_list_returns_to_it(client, bob, db):
    job = make_job(site_id=1, status="failed")
    client_for(client, bob)
    listing = client.get("/jobs/", {"status": "failed", "retried": "no"})
    link = f"/jobs/{job.pk}/?back=list&amp;status=failed&amp;retried=no"
    assert link in listing.text
    page = client.get(f"/jobs/{job.pk}/", {"back": "list", "status": "failed", "retried": "no"})
    assert 'href="/jobs/?status=failed&amp;retried=no"' in page.text  # ← Trigger jobs
    form = {"key": page.context["retry_key"], "back": "list", "status": "failed", "retried": "no"}
    response = client.post(f"/jobs/{job.pk}/retry/", form)
    assert response.status_code == 302
    assert response.url == "/jobs/?status=failed&retried=no"
    # Refused, the page still leads back to the same list.
    refused = client.post(f"/jobs/{job.pk}/retry/", {**form, "key": ""})
    assert refused.status_code == 409
    assert 'href="/jobs/?status=failed&amp;retried=no"' in refused.text


# --- The bulk confirmation acts on what it showed (issue #12.4) -----------------------------


def test_jobs_matching_after_the_confirmation_are_not_retried(client, bob, db):
    shown = [make_job(site_id=1, status="failed") for _ in range(3)]
    client_for(client, bob)
    confirm = client.post("/jobs/", {"action": "retry", "select_across": "1", "status": "failed"})
    assert 'id="retry-count" data-value="3"' in confirm.text
    late = [make_job(site_id=1, status="failed") for _ in range(5)]  # inserted in between
    done = client.post(
        "/jobs/",
        {
            "action": "retry",
            "select_across": "1",  # a forged "whole filter" changes nothing on confirm
            "status": "failed",
            "ids": confirm.context["ids"],
            "confirm": "yes",
            "key": confirm.context["key"],
        },
        follow=True,
    )
    assert "Retried 3 jobs" in done.text
    assert all(len(copies_of(job.pk)) == 1 for job in shown)
    assert all(copies_of(job.pk) == [] for job in late)


# --- The queue's health ---------------------------------------------------------------


def oracle(site_ids: list[int], stuck_minutes: int) -> dict:
    """The panel's figures in plain SQL."""
    start, end = local_day_bounds(local_today())
    scope = "site_id = ANY(%s)"
    counts = dict(
        sql(f"SELECT status, count(*) FROM {{table}} WHERE {scope} GROUP BY 1", [site_ids])
    )
    oldest = sql(
        f"SELECT id FROM {{table}} WHERE {scope} AND status = 'pending' "
        "ORDER BY created_at, id LIMIT 1",
        [site_ids],
    )
    (stuck,) = sql(
        f"SELECT count(*) FROM {{table}} WHERE {scope} AND status = 'pending' "
        "AND created_at < now() - make_interval(mins => %s)",
        [site_ids, stuck_minutes],
    )[0]
    (finished,) = sql(
        f"SELECT count(*) FROM {{table}} WHERE {scope} "
        "AND finished_at >= date_trunc('minute', now()) - interval '59 minutes' "
        "AND finished_at <= now()",
        [site_ids],
    )[0]
    failures = sql(
        f"SELECT event_type, count(*) FROM {{table}} WHERE {scope} AND status = 'failed' "
        "AND created_at >= %s AND created_at < %s GROUP BY 1 ORDER BY 2 DESC, 1",
        [site_ids, start, end],
    )
    return {
        "counts": counts,
        "oldest": oldest[0][0] if oldest else None,
        "stuck": stuck,
        "finished": finished,
        "failures": failures,
    }


@pytest.fixture
def queue(db):
    now = timezone.now()
    ago = lambda minutes: now - dt.timedelta(minutes=minutes)  # noqa: E731
    for site in (1, 2, 3):
        make_job(site_id=site, status="pending", created_at=ago(3 + site))
        make_job(site_id=site, status="pending", created_at=ago(40 + site))
        make_job(site_id=site, status="running", created_at=ago(2), started_at=ago(1))
        for minutes, event in ((1, "consumption"), (7, "recharge"), (30, "recharge")):
            make_job(
                site_id=site,
                status="failed",
                event_type=event,
                created_at=ago(minutes + 1),
                finished_at=ago(minutes),
            )
        make_job(site_id=site, status="success", created_at=ago(200), finished_at=ago(120))
        make_job(site_id=site, status="success", created_at=ago(10), finished_at=ago(9))
        make_job(site_id=site, status="skipped_duplicate", created_at=ago(5))
        # Yesterday's failure is not today's.
        make_job(
            site_id=site,
            status="failed",
            event_type="old_event",
            created_at=local_day_bounds(local_today())[0] - dt.timedelta(hours=1),
        )


@pytest.mark.parametrize("site_ids", [[1, 2], [1], [2]])
@override_settings(STUCK_MINUTES=15)
def test_health_figures_match_the_sql_oracle(queue, site_ids):
    figures = health(Scope.of_sites(site_ids))
    expected = oracle(site_ids, 15)
    assert {row["status"]: row["count"] for row in figures["counts"] if row["count"]} == (
        expected["counts"]
    )
    assert figures["oldest_pending"]["id"] == expected["oldest"]
    assert figures["oldest_pending"]["age_seconds"] >= 40 * 60
    assert figures["stuck"] == expected["stuck"] == len(site_ids)
    assert figures["finished_last_hour"] == expected["finished"]
    assert len(figures["finished_per_minute"]) == 60
    assert [(row["event_type"], row["count"]) for row in figures["failures_today"]] == (
        expected["failures"]
    )


@override_settings(STUCK_MINUTES=15)
def test_the_panel_shows_the_figures_in_scope_with_their_links(client, bob, alice, queue):
    expected = oracle([1], 15)
    text = client_for(client, bob).get("/jobs/").text
    assert 'id="queue-health"' in text and 'hx-get="/jobs/health/"' in text
    assert f'data-metric="jobs_pending" data-value="{expected["counts"]["pending"]}"' in text
    assert 'href="/jobs/?status=pending"' in text
    assert f'href="/jobs/?stuck=yes" data-metric="stuck" data-value="{expected["stuck"]}"' in text
    assert f'href="/jobs/{expected["oldest"]}/"' in text
    today = local_today().isoformat()
    assert f'href="/jobs/?status=failed&amp;event_type=recharge&amp;date_from={today}"' in text
    assert '<svg class="chart sparkline"' in text
    # The fragment it polls, narrowed to a site and keeping it in every link.
    panel = client_for(client, alice).get("/jobs/health/?site=2", HTTP_HX_REQUEST="true")
    assert panel.status_code == 200 and "<html" not in panel.text
    assert 'href="/jobs/?site=2&amp;stuck=yes"' in panel.text
    assert panel["Vary"].count("HX-Request") == 1
    # Each link leads to the rows counted.
    stuck = client.get("/jobs/", {"site": 2, "stuck": "yes"})
    assert len(stuck.context["page"].object_list) == oracle([2], 15)["stuck"]


def test_the_panel_refuses_bad_input(client, bob, queue):
    client_for(client, bob)
    assert client.get("/jobs/health/?site=2").status_code == 403
    assert client.get("/jobs/health/?site=x").status_code == 400
    assert client.post("/jobs/health/").status_code == 405


def test_the_panel_fails_alone(client, bob, queue, monkeypatch):
    from django.db import DatabaseError

    def broken(jobs, now=None):
        raise DatabaseError("statement timeout")

    monkeypatch.setattr("dashboard.queue.health", broken)
    response = client_for(client, bob).get("/jobs/")
    assert response.status_code == 200
    assert "unavailable — retrying" in response.text
    assert response.context["page"] is not None


# --- Migration 0006 reads the past retries back from the audit trail --------------------


def test_backfill_numbers_past_retries_from_the_audit_trail(bob, db):
    job = make_job(site_id=1, status="failed")
    retry_jobs(bob, [job.pk])
    retry_jobs(bob, [job.pk], again_ok=True)
    kept = list(JobRetry.objects.order_by("generation").values_list("generation", "copy_id"))
    JobRetry.objects.all().delete()
    migration = importlib.import_module("aimonitor.migrations.0009_job_retry")
    with connection.cursor() as cursor:
        cursor.execute(migration.BACKFILL)
    assert (
        list(JobRetry.objects.order_by("generation").values_list("generation", "copy_id")) == kept
    )
    assert [copy for _generation, copy in kept] == copies_of(job.pk)


def test_a_person_without_sites_sees_an_empty_queue(client, queue):
    nobody = make_user("nosites", "operator", sites=[])
    response = client_for(client, nobody).get("/jobs/")
    assert response.status_code == 200
    assert all(row["count"] == 0 for row in response.context["health"]["counts"])
    assert response.context["health"]["oldest_pending"] is None


def test_a_filter_swap_brings_the_panel_into_the_new_scope(client, alice, queue):
    response = client_for(client, alice).get("/jobs/?site=2", HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "<html" not in response.text
    assert 'id="queue-health"' in response.text and 'hx-swap-oob="true"' in response.text
    assert 'hx-get="/jobs/health/?site=2"' in response.text
    # The panel polled on its own is not out of band.
    panel = client.get("/jobs/health/?site=2", HTTP_HX_REQUEST="true")
    assert "hx-swap-oob" not in panel.text
