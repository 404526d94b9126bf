"""The worker's tasks on procrastinate (PostgreSQL-backed; jobs are rows of this database).

- ``worker_pass``: periodic, every AIMONITOR_WORKER_INTERVAL_SECONDS; procrastinate
  defers each tick once however many workers run (its periodic defers are unique per
  task and timestamp), and the pass itself holds an advisory lock (``alerts.incidents``).
- ``deliver``: one attempt of one Delivery; on a timeout or 5xx it raises
  ``RetryDelivery`` and procrastinate runs it again after 2 s, then 4 s. Its queueing
  lock keeps one waiting job per delivery; the row lock in ``attempt`` keeps one
  sender at a time; the Delivery's status makes a sent event final.
"""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.db import close_old_connections, transaction
from procrastinate import RetryStrategy, jobs, manager
from procrastinate.contrib.django import app
from procrastinate.contrib.django.django_connector import DjangoConnector
from procrastinate.exceptions import AlreadyEnqueued

from alerts.models import Delivery
from alerts.notify.deliver import MAX_ATTEMPTS, attempt

logger = logging.getLogger(__name__)

QUEUE = "notify"


class RetryDelivery(Exception):
    """The attempt failed in a way another attempt may fix (timeout, 5xx)."""


def interval_cron(seconds: int) -> str:
    """Cron for "every ``seconds``" (croniter's optional sixth field is seconds)."""
    if seconds < 60:
        return f"* * * * * */{seconds}"
    return f"*/{seconds // 60} * * * *"


@app.task(
    name="alerts.deliver",
    queue=QUEUE,
    retry=RetryStrategy(
        max_attempts=MAX_ATTEMPTS - 1, exponential_wait=2, retry_exceptions={RetryDelivery}
    ),
)
def deliver(delivery_id: int) -> None:
    close_old_connections()
    try:
        status = attempt(delivery_id)
    finally:
        close_old_connections()
    if status == Delivery.Status.RETRYING:
        raise RetryDelivery(f"delivery {delivery_id} will be tried again")


# Jobs are deferred through Django's own connection, so they are inserted in the
# caller's transaction (the pass's): a delivery and its job commit together. (Inside the
# worker, the app's connector is procrastinate's psycopg 3 pool, outside it.)
_in_transaction = manager.JobManager(DjangoConnector())


def enqueue(delivery_ids) -> None:
    """Queue one ``deliver`` job per delivery (none if one is already waiting)."""
    for delivery_id in delivery_ids:
        job = deliver.configure(queueing_lock=f"delivery-{delivery_id}").job
        # A savepoint each: a refused insert must not abort the pass's transaction.
        with contextlib.suppress(AlreadyEnqueued), transaction.atomic():
            jobs.JobDeferrer(job_manager=_in_transaction, job=job).defer(delivery_id=delivery_id)


@app.periodic(cron=interval_cron(settings.WORKER_INTERVAL_SECONDS), periodic_id="pass")
@app.task(name="alerts.worker_pass", queue=QUEUE, queueing_lock="alerts.worker_pass")
def worker_pass(timestamp: int) -> None:
    from alerts.worker import work_pass

    close_old_connections()
    try:
        done = work_pass(enqueue)
    finally:
        close_old_connections()
    logger.info(
        "Pass: %s opened, %s reminded, %s resolved, %s deliveries queued, %s re-queued.",
        len(done.result.opened),
        len(done.result.reminded),
        len(done.result.resolved),
        len(done.result.deliveries),
        len(done.requeued),
    )
