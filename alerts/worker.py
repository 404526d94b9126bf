"""The worker's pass (SPEC.md §10): bring the dashboard's summaries up to date (the
failure groups' pending counts too), evaluate the rules, open/remind/resolve incidents
and queue their deliveries.

Run by procrastinate's periodic task every AIMONITOR_WORKER_INTERVAL_SECONDS (deferred
once per tick whatever the number of workers) and by ``run_worker --once``.

The summaries are caught up in ``summaries.keeping.refresh()``'s bounded steps (at most 6 hours or
200,000 calls each, one statement each), so the first pass over a table without
summaries never runs a statement beyond the statement timeout; a pass stops catching up
after ``CATCH_UP_SECONDS`` and the next pass goes on where it stopped.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Q
from django.utils import timezone

from aimonitor.models import RollupState
from aimonitor.summaries import failures, keeping
from alerts.incidents import PassResult, run_pass
from alerts.models import Delivery

logger = logging.getLogger(__name__)

CATCH_UP_SECONDS = 30
CATCH_UP_STEPS = 1000


@dataclass
class WorkerPass:
    rollup_steps: int
    rollups_current: bool
    result: PassResult
    requeued: list[int]


def catch_up_rollups(budget_seconds: float = CATCH_UP_SECONDS) -> tuple[int, bool]:
    """Refresh in bounded steps until nothing changes or the time is up: (steps, caught up).

    Caught up: no more than one step's worth of observed ids left to adopt (a new id is
    adopted a minute after it is first seen, so on a fresh table the first pass only
    places the summaries' start and the next pass sums the backlog, step by step).
    """
    deadline = time.monotonic() + budget_seconds
    previous, steps = None, 0
    while steps < CATCH_UP_STEPS:
        state = keeping.refresh()
        steps += 1
        if state == previous:
            seen = RollupState.objects.filter(pk=1).values_list("seen_id", flat=True).first()
            return steps, state.covered_until is not None and (
                seen or 0
            ) - state.max_id <= keeping.STEP_IDS
        previous = state
        if time.monotonic() > deadline:
            return steps, False
    return steps, False


def count_failures_pending() -> None:
    """The failure groups' pending counts of the hours triaged since the last pass (until
    then /failures/ counts those hours live, exactly but slower). Its failure fails only
    itself: the rules are evaluated all the same."""
    try:
        counted, changed = failures.count_pending()
    except DatabaseError as error:
        logger.warning("Pending alerts not counted again: %s", error)
        return
    if changed:
        logger.info(
            "Pending alerts counted again in %s of %s changed hours and sites.", counted, changed
        )


def forgotten_deliveries(now: dt.datetime) -> list[int]:
    """Unfinished deliveries nobody has tried for a while: their job was lost (a worker
    killed mid-attempt). Sending them again is safe: ``attempt`` skips what is sent."""
    stale = now - dt.timedelta(seconds=settings.DELIVERY_STALE_SECONDS)
    return list(
        Delivery.objects.filter(status__in=(Delivery.Status.PENDING, Delivery.Status.RETRYING))
        .filter(
            Q(last_attempt_at__lt=stale) | Q(last_attempt_at__isnull=True, created_at__lt=stale)
        )
        .values_list("pk", flat=True)[:1000]
    )


def work_pass(enqueue, now: dt.datetime | None = None) -> WorkerPass:
    """One pass; ``enqueue(ids)`` queues deliveries (in the pass's transaction)."""
    steps, current = catch_up_rollups()
    if not current:
        logger.warning("Rollups not caught up after %s steps; the next pass goes on.", steps)
    count_failures_pending()
    result = run_pass(now, enqueue=enqueue)
    requeued = forgotten_deliveries(timezone.now())
    if requeued:
        enqueue(requeued)
    return WorkerPass(steps, current, result, requeued)
