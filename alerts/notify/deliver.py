"""Delivering one queued event to one channel: one attempt, recorded on its Delivery row.

Exactly once across workers: an attempt locks its Delivery row (``FOR UPDATE SKIP
LOCKED``) for the attempt's duration and only acts on a row still pending or retrying,
so two workers handed the same delivery never send it at once, and a delivery that
was sent is never sent again. A worker killed mid-attempt loses its lock with its
connection and nothing of the attempt is recorded; the delivery is still pending, so
the next worker (procrastinate's retry of the stalled job, or the pass's re-queueing
of forgotten deliveries) sends it. Whether the killed attempt reached the receiver is
unknowable; the repeat carries the same ``X-AIMonitor-Delivery`` key to drop it by.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from alerts.models import Delivery
from alerts.notify.channels import Outcome, send
from alerts.notify.messages import compose

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
UNFINISHED = (Delivery.Status.PENDING, Delivery.Status.RETRYING)


def attempt(delivery_id: int) -> str | None:
    """Try once; the delivery's status afterwards (None: not ours to send now)."""
    with transaction.atomic():
        delivery = (
            Delivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("incident__rule", "channel")
            .filter(pk=delivery_id, status__in=UNFINISHED)
            .first()
        )
        if delivery is None:
            return None
        if not delivery.channel.enabled:
            outcome_ok, retryable, http_status, error = False, False, None, "channel disabled"
        else:
            try:
                outcome = send(
                    delivery.channel, compose(delivery), f"aimonitor-delivery-{delivery.pk}"
                )
            except Exception as failure:  # noqa: BLE001 - recorded, so it is not retried forever
                logger.exception("Delivery %s could not be attempted", delivery.pk)
                outcome = Outcome(False, False, error=f"{type(failure).__name__}: {failure}"[:500])
            outcome_ok, retryable = outcome.ok, outcome.retryable
            http_status, error = outcome.http_status, outcome.error
        now = timezone.now()
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.http_status = http_status
        delivery.error = error
        delivery.log = [
            *delivery.log,
            {"at": now.isoformat(), "ok": outcome_ok, "http_status": http_status, "error": error},
        ]
        if outcome_ok:
            delivery.status = Delivery.Status.SENT
        elif retryable and delivery.attempts < MAX_ATTEMPTS:
            delivery.status = Delivery.Status.RETRYING
        else:
            delivery.status = Delivery.Status.FAILED
        delivery.save(
            update_fields=[
                "attempts",
                "last_attempt_at",
                "http_status",
                "error",
                "log",
                "status",
            ]
        )
    return delivery.status
