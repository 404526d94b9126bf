"""The worker's pass: the dashboard's summaries caught up in bounded steps (each one
statement), and deliveries whose job was lost queued again."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from aimonitor import summaries
from aimonitor.models import RollupState, RunLog
from aimonitor.scope import Scope
from aimonitor.summaries import keeping
from alerts.models import AlertRule, Channel, Delivery, Incident
from alerts.worker import catch_up_rollups, forgotten_deliveries, work_pass
from tests.conftest import make_run


def test_first_pass_on_a_table_without_summaries_catches_up_in_bounded_steps(
    db, settings, monkeypatch
):
    settings.ROLLUP_LAG_SECONDS = 0
    monkeypatch.setattr(keeping, "STEP_IDS", 7)  # 50 calls: several steps of at most 7 ids
    now = timezone.now()
    for n in range(50):
        make_run(created_at=now - dt.timedelta(hours=3, minutes=n))
    steps, current = catch_up_rollups()
    assert current and steps >= 50 // 7
    state = RollupState.objects.get()
    assert state.max_id == RunLog.objects.order_by("-id").first().id
    assert state.covered_until == summaries.closing_point()
    assert (
        summaries.sums(Scope.everything(), {"all": (now - dt.timedelta(days=1), now)})["all"][
            "calls"
        ]
        == 50
    )


def test_a_pass_stops_catching_up_when_its_time_is_up(db, settings, monkeypatch):
    settings.ROLLUP_LAG_SECONDS = 0
    monkeypatch.setattr(keeping, "STEP_IDS", 1)
    for n in range(10):
        make_run(created_at=timezone.now() - dt.timedelta(hours=2, minutes=n))
    steps, current = catch_up_rollups(budget_seconds=0)
    assert (steps, current) == (1, False)


def test_deliveries_without_a_job_are_queued_again(db, settings):
    settings.DELIVERY_STALE_SECONDS = 60
    rule = AlertRule.objects.create(name="r", kind="failure_count", threshold=1)
    incident = Incident.objects.create(
        rule=rule, key="k", last_value=1, threshold=1, window_minutes=15
    )
    hook = Channel.objects.create(name="h", kind="webhook", url="http://127.0.0.1:9/")
    old = timezone.now() - dt.timedelta(minutes=5)
    lost = Delivery.objects.create(incident=incident, channel=hook, event="firing", created_at=old)
    Delivery.objects.create(incident=incident, channel=hook, event="reminder", sequence=1)  # new
    Delivery.objects.create(
        incident=incident, channel=hook, event="resolved", created_at=old, status="sent"
    )
    assert forgotten_deliveries(timezone.now()) == [lost.pk]
    queued = []
    done = work_pass(queued.extend)
    assert queued == [lost.pk] and done.requeued == [lost.pk]


def test_with_the_adoption_lag_the_next_pass_sums_the_whole_backlog_step_by_step(
    db, settings, monkeypatch
):
    """Ids are adopted a minute after they are seen; once they are, a pass adopts all of
    them in bounded steps rather than one step per minute."""
    settings.ROLLUP_LAG_SECONDS = 60
    monkeypatch.setattr(keeping, "STEP_IDS", 5)
    now = timezone.now()
    for n in range(40):
        make_run(created_at=now - dt.timedelta(hours=3, minutes=n))
    steps, caught_up = catch_up_rollups()
    assert not caught_up and RollupState.objects.get().max_id == 0  # placed, ids seen
    RollupState.objects.update(seen_at=timezone.now() - dt.timedelta(minutes=2))
    steps, caught_up = catch_up_rollups()
    assert caught_up and steps >= 40 // 5
    assert RollupState.objects.get().max_id == RunLog.objects.order_by("-id").first().id
    assert (
        summaries.sums(Scope.everything(), {"all": (now - dt.timedelta(days=1), now)})["all"][
            "calls"
        ]
        == 40
    )


def test_a_pass_counts_triaged_hours_again_and_a_failed_count_fails_only_itself(
    db, settings, monkeypatch, caplog
):
    from aimonitor.models import FailureRollup
    from aimonitor.summaries import failures

    settings.ROLLUP_LAG_SECONDS = 0
    for n in range(3):
        make_run(status="timeout", created_at=timezone.now() - dt.timedelta(hours=3, minutes=n))
    catch_up_rollups()
    assert sum(FailureRollup.objects.values_list("pending", flat=True)) == 3
    RunLog.objects.filter(pk=RunLog.objects.order_by("id").first().pk).update(
        alert_status="acknowledged"
    )
    work_pass(lambda ids: None)
    assert sum(FailureRollup.objects.values_list("pending", flat=True)) == 2
    assert failures.count_pending() == (0, 0)

    # A count that fails (here: a statement PostgreSQL refuses) leaves the pass going on.
    RunLog.objects.filter(alert_status__isnull=True).update(alert_status="ignored")
    monkeypatch.setitem(failures.SQL, "sync", "SELECT no_such_column FROM {pending_hour}")
    done = work_pass(lambda ids: None)
    assert done.result is not None
    assert "Pending alerts not counted again" in caplog.text
    assert sum(FailureRollup.objects.values_list("pending", flat=True)) == 2  # as it was
