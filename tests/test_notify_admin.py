"""Notification channels and rules in the Django admin: admins only, bad input refused
with a message, a channel's secret write-only."""

from __future__ import annotations

import pytest

from alerts.models import AlertRule, Channel
from tests.conftest import client_for, make_user


@pytest.fixture
def ada(db):
    """An admin of every site: channels and rules serve every site, so only such admins
    (and superusers) edit them."""
    return make_user("ada", "admin", all_sites=True)


RULE = {
    "name": "Chat failing",
    "kind": "failure_rate",
    "site_id": "1",
    "app_type": "app1_chat",
    "window_minutes": "15",
    "threshold": "0.5",
    "min_calls": "10",
    "repeat_minutes": "60",
    "enabled": "on",
}
CHANNEL = {"name": "Ops hook", "kind": "webhook", "url": "https://hooks.example/x", "enabled": "on"}


def add_rule(client, **changes):
    return client.post("/admin/alerts/alertrule/add/", {**RULE, **changes})


def test_admin_adds_a_rule_and_a_channel(client, ada):
    client_for(client, ada)
    assert client.post("/admin/alerts/channel/add/", CHANNEL).status_code == 302
    channel = Channel.objects.get()
    assert add_rule(client, channels=[channel.pk]).status_code == 302
    rule = AlertRule.objects.get()
    assert (rule.kind, rule.threshold, list(rule.channels.all())) == (
        "failure_rate",
        0.5,
        [channel],
    )


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"window_minutes": "-5"}, "greater than or equal to 1"),
        ({"window_minutes": "0"}, "greater than or equal to 1"),
        ({"window_minutes": "5000"}, "less than or equal to 1440"),
        ({"threshold": "1.5"}, "A failure rate is a fraction"),
        ({"threshold": "0"}, "A failure rate is a fraction"),
        ({"threshold": "-1"}, "A failure rate is a fraction"),
        ({"kind": "failure_count", "threshold": "0.5"}, "The threshold is a count"),
        ({"kind": "latency_p95", "threshold": "-3"}, "The latency threshold is in milliseconds"),
        ({"kind": "silence", "app_type": "", "threshold": "0"}, "A silence rule watches one app"),
        ({"kind": "budget", "threshold": "0.8"}, "The budget is global"),
        ({"kind": "stuck_jobs", "threshold": "3"}, "Stuck jobs are counted per site"),
        ({"min_calls": "-1"}, "greater than or equal to 0"),
        ({"repeat_minutes": "-1"}, "greater than or equal to 0"),
    ],
)
def test_bad_rules_are_refused_with_a_message(client, ada, changes, message):
    response = add_rule(client_for(client, ada), **changes)
    assert response.status_code == 200
    assert message in response.text
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"url": "ftp://hooks.example/x"}, "Enter a valid URL"),
        ({"url": "javascript:alert(1)"}, "Enter a valid URL"),
        ({"url": ""}, "needs an http(s) URL"),
        ({"kind": "email", "url": "", "recipients": ""}, "needs at least one recipient"),
        (
            {"kind": "email", "url": "", "recipients": "ops@example.com, nope"},
            "nope is not an email",
        ),
    ],
)
def test_bad_channels_are_refused_with_a_message(client, ada, changes, message):
    response = client_for(client, ada).post("/admin/alerts/channel/add/", {**CHANNEL, **changes})
    assert response.status_code == 200
    assert message in response.text
    assert not Channel.objects.exists()


def test_a_saved_secret_is_never_shown_and_blank_keeps_it(client, ada):
    client_for(client, ada)
    client.post("/admin/alerts/channel/add/", {**CHANNEL, "secret": "s3cr3t-value"})
    channel = Channel.objects.get()
    assert channel.secret == "s3cr3t-value"
    page = client.get(f"/admin/alerts/channel/{channel.pk}/change/")
    assert "s3cr3t-value" not in page.text
    assert "s3cr3t-value" not in client.get("/admin/alerts/channel/").text
    # Saving with the secret left empty keeps it; a new value replaces it; the tick clears it.
    client.post(f"/admin/alerts/channel/{channel.pk}/change/", {**CHANNEL, "name": "Renamed"})
    channel.refresh_from_db()
    assert (channel.name, channel.secret) == ("Renamed", "s3cr3t-value")
    client.post(f"/admin/alerts/channel/{channel.pk}/change/", {**CHANNEL, "secret": "new"})
    channel.refresh_from_db()
    assert channel.secret == "new"
    client.post(f"/admin/alerts/channel/{channel.pk}/change/", {**CHANNEL, "clear_secret": "on"})
    channel.refresh_from_db()
    assert channel.secret == ""


def test_site_limited_admins_cannot_edit_notifications(client, alice):
    client_for(client, alice)
    assert client.get("/admin/alerts/channel/").status_code == 403
    assert client.post("/admin/alerts/alertrule/add/", RULE).status_code == 403
    assert not AlertRule.objects.exists()


def test_admin_writes_are_audited(client, ada):
    from aimonitor.models import AuditEvent

    client_for(client, ada).post("/admin/alerts/channel/add/", {**CHANNEL, "secret": "zzz"})
    event = AuditEvent.objects.get()
    assert (event.action, event.target_table, event.actor) == ("admin_add", "alerts_channel", ada)
    assert "zzz" not in str(event.details)


def test_operators_and_viewers_cannot_edit_notifications(client, bob, charlie):
    for user in (bob, charlie):
        client_for(client, user)
        assert client.get("/admin/alerts/alertrule/").status_code == 302
        assert client.post("/admin/alerts/channel/add/", CHANNEL).status_code == 302
    assert not Channel.objects.exists()


def test_incidents_and_deliveries_are_read_only_in_the_admin(client, alice):
    client_for(client, alice)
    assert client.get("/admin/alerts/incident/").status_code == 200
    assert client.get("/admin/alerts/incident/add/").status_code == 403
    assert client.get("/admin/alerts/delivery/add/").status_code == 403
