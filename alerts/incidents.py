"""One pass of the notifier: evaluate every enabled rule, open, remind and resolve
incidents, and queue one delivery per event and channel (SPEC.md §10).

Invariants: a pass runs in one transaction under a database-wide advisory lock, so
two workers never run passes at once (the second skips; its next tick runs); each
event's deliveries are inserted with the incident's change, and ``enqueue`` is called
in that same transaction (procrastinate's jobs are rows of the same database), so a
delivery is queued exactly when its event happens — never lost if the worker dies,
never queued twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from alerts.evaluation import evaluate
from alerts.models import AlertRule, Delivery, Incident

# pg_try_advisory_xact_lock key: "AIMN" — one pass at a time across every worker.
PASS_LOCK = 0x41494D4E


@dataclass
class PassResult:
    ran: bool = True
    opened: list[int] = field(default_factory=list)
    reminded: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)


def _queue(incident: Incident, rule: AlertRule, event: str, sequence: int = 0) -> list[Delivery]:
    return [
        Delivery(incident=incident, channel=channel, event=event, sequence=sequence)
        for channel in rule.channels.all()
        if channel.enabled
    ]


def run_pass(
    now: dt.datetime | None = None, enqueue: Callable[[list[int]], None] | None = None
) -> PassResult:
    """Evaluate, open/remind/resolve, queue deliveries; ``enqueue(ids)`` in the same transaction."""
    now = now or timezone.now()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [PASS_LOCK])
            if not cursor.fetchone()[0]:
                return PassResult(ran=False)
        rules = list(AlertRule.objects.filter(enabled=True).prefetch_related("channels"))
        findings = evaluate(rules, now)
        open_incidents = {
            (incident.rule_id, incident.key): incident
            for incident in Incident.objects.open()
            .select_related("rule")
            .prefetch_related("rule__channels")
        }
        result, deliveries, changed = PassResult(), [], []
        for rule in rules:
            for finding in findings[rule.pk]:
                incident = open_incidents.pop((rule.pk, finding.key), None)
                if incident is None:
                    incident = Incident.objects.create(
                        rule=rule,
                        key=finding.key,
                        site_id=finding.site_id,
                        app_type=finding.app_type,
                        started_at=now,
                        last_value=finding.value,
                        threshold=rule.threshold,
                        window_minutes=rule.window_minutes,
                        last_evaluated_at=now,
                    )
                    result.opened.append(incident.pk)
                    deliveries += _queue(incident, rule, Delivery.Event.FIRING)
                    continue
                incident.rule = rule
                incident.last_value = finding.value
                # The rule may have been edited since: messages quote its current terms.
                incident.threshold = rule.threshold
                incident.window_minutes = rule.window_minutes
                incident.last_evaluated_at = now
                due = incident.reminder_due(now)
                if due:
                    incident.reminders = due
                    result.reminded.append(incident.pk)
                    deliveries += _queue(incident, rule, Delivery.Event.REMINDER, due)
                changed.append(incident)
        # Whatever is still open no longer fires (or its rule was switched off).
        for incident in open_incidents.values():
            incident.resolved_at = now
            incident.last_evaluated_at = now
            result.resolved.append(incident.pk)
            deliveries += _queue(incident, incident.rule, Delivery.Event.RESOLVED)
            changed.append(incident)
        Incident.objects.bulk_update(
            changed,
            [
                "last_value",
                "threshold",
                "window_minutes",
                "last_evaluated_at",
                "reminders",
                "resolved_at",
            ],
        )
        # The unique (incident, channel, event, sequence) is the backstop: a second
        # queueing of one event fails the whole pass rather than sending twice.
        created = Delivery.objects.bulk_create(deliveries)
        result.deliveries = [delivery.pk for delivery in created]
        if enqueue and result.deliveries:
            enqueue(result.deliveries)
    return result
