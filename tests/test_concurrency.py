"""Races on real PostgreSQL, with real threads and their own connections.

The feature modules already race their own writes (each test below names the gap it
fills):
- acknowledge racing ignore on one alert: tests/test_alerts.py::
  test_acknowledge_racing_ignore_ends_in_one_state_with_both_audited
- two batch confirms at once: tests/test_batch.py::
  test_two_confirms_at_the_same_moment_create_one_set and
  test_the_database_decides_when_both_confirms_pass_the_checks
- a double-submitted retry: tests/test_jobs.py::
  test_two_retry_submits_at_the_same_moment_create_one_job

Here: the login throttle under a burst of parallel guesses, two invalidations of the
same cache entries, a double-submitted bulk retry, and two bulk triage actions over
overlapping alerts locked in opposite orders.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from axes.models import AccessAttempt
from django.db import connection, connections, transaction
from django.test import Client

from aimonitor.models import AuditEvent, CacheEntry, RunLog, TriggerJob
from aimonitor.operations.alerts import set_alert_status
from aimonitor.operations.cache import invalidate_cache
from tests.conftest import make_cache, make_job, make_run, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def race(*calls, timeout: float = 60):
    """Run the calls in threads released together; their results (or exceptions) in order."""
    results: list = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index, call):
        try:
            start.wait(timeout=10)
            results[index] = call()
        except Exception as error:  # reported by the caller's asserts
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not any(thread.is_alive() for thread in threads), "a racer never finished"
    return results


def waiting_on_locks() -> int:
    """Sessions of this database waiting on a lock right now."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


def held_until_both_wait(lock_rows, *calls):
    """Lock ``lock_rows`` so both calls queue behind it, then let them go at once."""
    results: list = [None] * len(calls)

    def run(index, call):
        try:
            results[index] = call()
        except Exception as error:
            results[index] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    with transaction.atomic():
        lock_rows()
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while waiting_on_locks() < len(calls) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting_on_locks() == len(calls), "the racers did not meet at the lock"
    for thread in threads:
        thread.join(30)
    return results


def test_a_burst_of_parallel_guesses_gets_no_more_than_the_limit(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_user("bob", "operator", sites=[1])

    def guess():
        return Client().post("/accounts/login/", {"username": "bob", "password": "wrong"})

    responses = race(*[guess] * 8)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 5 + [429] * 3
    (attempt,) = AccessAttempt.objects.filter(username="bob")
    assert attempt.failures_since_start == 5
    right = Client().post(
        "/accounts/login/", {"username": "bob", "password": "correct horse battery staple"}
    )
    assert right.status_code == 429


def test_two_invalidations_at_once_change_each_entry_once():
    bob = make_user("bob", "operator", sites=[1])
    alice = make_user("alice", "admin", sites=[1, 2])
    entries = [make_cache(site_id=1, cache_type="app3_clue") for _ in range(20)]
    ids = [entry.pk for entry in entries]

    results = held_until_both_wait(
        lambda: list(CacheEntry.objects.select_for_update().filter(pk__in=ids)),
        lambda: invalidate_cache(bob, 1, "app3_clue"),
        lambda: invalidate_cache(alice, 1),
    )

    assert not any(isinstance(r, Exception) for r in results), results
    assert sum(r.count for r in results) == 20  # the real number changed, not 40
    assert CacheEntry.objects.filter(pk__in=ids, status="invalidated").count() == 20
    audited = [set(event.target_ids) for event in AuditEvent.objects.filter(action="invalidate")]
    assert set().union(*audited) == set(ids)
    assert sum(len(ids_) for ids_ in audited) == 20  # no entry in two events


def test_a_double_submitted_bulk_retry_creates_one_set():
    bob = make_user("bob", "operator", sites=[1])
    originals = [make_job(site_id=1, status="failed") for _ in range(5)]
    key = uuid.uuid4().hex
    first = Client()
    first.force_login(bob)
    second = Client()
    second.cookies = first.cookies  # one browser, the confirm button pressed twice
    form = {
        "action": "retry",
        "ids": [job.pk for job in originals],
        "confirm": "yes",
        "key": key,
    }

    responses = race(lambda: first.post("/jobs/", form), lambda: second.post("/jobs/", form))

    assert [r.status_code for r in responses] == [302, 302]
    assert TriggerJob.objects.filter(is_forced=True).count() == 5
    assert AuditEvent.objects.filter(action="retry").count() == 5


def test_bulk_triage_over_overlapping_alerts_does_not_deadlock():
    bob = make_user("bob", "operator", sites=[1])
    alice = make_user("alice", "admin", sites=[1])
    alerts = [make_run(site_id=1, status="failed") for _ in range(30)]
    ids = [alert.pk for alert in alerts]

    results = held_until_both_wait(
        lambda: list(RunLog.objects.select_for_update().filter(pk=ids[0])),
        lambda: set_alert_status(bob, ids, "acknowledge"),
        lambda: set_alert_status(alice, list(reversed(ids)), "ignore"),
    )

    assert not any(isinstance(r, Exception) for r in results), results
    states = set(RunLog.objects.filter(pk__in=ids).values_list("alert_status", flat=True))
    assert len(states) == 1  # whoever went second set every row
    # Both did their whole set in turn: 30 changes each, every one audited.
    assert [len(r.changed) for r in results] == [30, 30]
    events = AuditEvent.objects.filter(target_table="ai_run_logs")
    assert sum(len(event.target_ids) for event in events) == 60


def test_twenty_estimates_at_once_in_one_session_all_stay_confirmable(settings):
    """Each estimate used to rewrite the whole session: parallel ones lost each other's
    batches (5 of 20 confirmable). Now each is its own row: all 20 confirm, once each."""
    import re

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    make_run(site_id=1, app_type="app1_chat")  # an app seen lately is offered
    browser = Client()
    browser.force_login(make_user("alice", "admin", sites=[1]))

    def estimate(member_id):
        def call():
            tab = Client()
            tab.cookies = browser.cookies  # one session, many tabs
            response = tab.post(
                "/batch/", {"site": 1, "app_types": ["app1_chat"], "member_ids": str(member_id)}
            )
            assert response.status_code == 200, response.status_code
            return re.search(r'name="batch_id" value="([0-9a-f]{32})"', response.text).group(1)

        return call

    batch_ids = race(*[estimate(5000 + n) for n in range(20)])
    assert len(set(batch_ids)) == 20, batch_ids

    statuses = [browser.post("/batch/confirm/", {"batch_id": b}).status_code for b in batch_ids]
    assert statuses == [302] * 20
    jobs = TriggerJob.objects.filter(event_type="admin_batch")
    assert sorted(jobs.values_list("member_id", flat=True)) == list(range(5000, 5020))
    # Still exactly once: a second confirm of any of them creates nothing more.
    assert browser.post("/batch/confirm/", {"batch_id": batch_ids[0]}).status_code == 409
    assert jobs.count() == 20
