"""``make load --worker-processes``'s consistency check (load/notify.py) catches what it
promises to: a delivery received twice, a key the database does not know, an event
sent under two keys, an incident left open, a control rule that fired."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from alerts.models import AlertRule, Channel, Delivery, Incident
from load import notify

pytestmark = pytest.mark.django_db(transaction=True)


def database_url() -> str:
    url = urlsplit(settings.DATABASE_URL)
    return urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"]))


def post(receiver: notify.Receiver, delivery: Delivery, key: str | None = None) -> int:
    body = json.dumps(
        {
            "event": delivery.event,
            "rule": delivery.incident.rule.name,
            "app_type": delivery.incident.app_type,
            "started_at": delivery.incident.started_at.isoformat(),
            "text": f"Reminder {delivery.sequence}: nobody" if delivery.sequence else "",
        }
    ).encode()
    request = urllib.request.Request(
        receiver.base + urlsplit(delivery.channel.url).path,
        data=body,
        headers={"X-AIMonitor-Delivery": key or f"aimonitor-delivery-{delivery.pk}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def run():
    """The rules and channels of a load run, its receiver, and a sent history for
    "failures A" (firing, reminder 1, resolved on both channels) and "rate B"."""
    receiver = notify.Receiver()
    receiver.start()
    rule_ids = notify.set_up(database_url(), receiver)
    now = timezone.now()
    sent = []
    for name, *_, fires in notify.RULES:
        if not fires:
            continue
        rule = AlertRule.objects.get(pk=rule_ids[name])
        incident = Incident.objects.create(
            rule=rule,
            key=f"site=*;app={rule.app_type}",
            app_type=rule.app_type,
            started_at=now,
            resolved_at=now,
            last_value=9,
            threshold=rule.threshold,
            window_minutes=1,
            reminders=1 if rule.repeat_minutes else 0,
        )
        events = [("firing", 0), ("resolved", 0)] + (
            [("reminder", 1)] if incident.reminders else []
        )
        for channel in rule.channels.all():
            for event, sequence in events:
                delivery = Delivery.objects.create(
                    incident=incident, channel=channel, event=event, sequence=sequence
                )
                attempts = 1
                while post(receiver, delivery) != 200:  # the receiver's planned 503s
                    attempts += 1
                delivery.status, delivery.attempts = Delivery.Status.SENT, attempts
                delivery.save()
                sent.append(delivery)
    injector = notify.Injector(database_url(), "biz", until=0)
    yield receiver, rule_ids, injector, sent
    receiver.stop()


def check(run) -> dict:
    receiver, rule_ids, injector, _ = run
    return notify.check(database_url(), rule_ids, receiver, injector, [], [])


def test_a_clean_history_passes(run):
    result = check(run)
    assert result["problems"] == [], result["lines"]
    assert any("503 on purpose" in line for line in result["lines"])


def test_a_delivery_received_twice_fails(run):
    receiver, _, _, sent = run
    assert post(receiver, sent[0]) == 200
    assert "receiver" in check(run)["problems"]


def test_an_event_sent_again_under_another_key_fails(run):
    receiver, _, _, sent = run
    while post(receiver, sent[1], key="aimonitor-delivery-999999") != 200:
        pass  # the receiver's planned 503 on a new key
    result = check(run)
    assert "receiver" in result["problems"]
    # Read from the payloads alone, whatever the key: the same event accepted twice.
    assert any("one event accepted twice: [(" in line for line in result["lines"])


def test_an_incident_left_open_and_a_missing_resolved_delivery_fail(run):
    _, rule_ids, _, _ = run
    incident = Incident.objects.get(rule_id=rule_ids["load notify: rate B"])
    Incident.objects.filter(pk=incident.pk).update(resolved_at=None)
    Delivery.objects.filter(incident=incident, event="resolved").delete()
    problems = check(run)["problems"]
    assert f"load notify: rate B: incidents [{incident.pk}] never resolved" in problems
    assert "delivery rows" in problems


def test_the_control_rule_firing_fails(run):
    _, rule_ids, _, _ = run
    Incident.objects.create(
        rule_id=rule_ids["load notify: control"],
        key="site=1;app=load_probe_a",
        resolved_at=timezone.now(),
        last_value=1,
        threshold=1_000_000,
        window_minutes=1,
    )
    assert "load notify: control: 1 incidents, 0 expected" in check(run)["problems"]


def test_a_delivery_not_sent_fails(run):
    _, _, _, sent = run
    Delivery.objects.filter(pk=sent[0].pk).update(status=Delivery.Status.FAILED)
    assert "deliveries not sent" in check(run)["problems"]


def test_the_channels_point_at_the_receiver(run):
    receiver, *_ = run
    assert sorted(
        Channel.objects.filter(name__startswith=notify.PREFIX).values_list("url", flat=True)
    ) == [
        f"{receiver.base}/a",
        f"{receiver.base}/b",
    ]
