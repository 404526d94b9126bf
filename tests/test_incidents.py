"""Incidents: opened, reminded and resolved by the worker's pass; shown at /incidents/
and on the dashboard in the user's scope; acknowledged by operators (audited)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aimonitor.models import AuditEvent
from alerts.incidents import run_pass
from alerts.models import AlertRule, Channel, Delivery, Incident
from tests.conftest import client_for, make_run

T0 = timezone.now().replace(microsecond=0)


def failing(site_id=1, app_type="app1_chat", at=T0, n=10, failed=6):
    for i in range(n):
        make_run(
            site_id=site_id,
            app_type=app_type,
            status="failed" if i < failed else "success",
            created_at=at - dt.timedelta(minutes=1),
        )


@pytest.fixture
def hook(db):
    return Channel.objects.create(name="hook", kind="webhook", url="http://127.0.0.1:9/x")


def make_rule(*channels, **fields) -> AlertRule:
    values = {
        "name": "Chat failing",
        "kind": "failure_rate",
        "threshold": 0.5,
        "window_minutes": 15,
        "min_calls": 10,
        "repeat_minutes": 60,
    }
    values.update(fields)
    rule = AlertRule.objects.create(**values)
    rule.channels.set(channels)
    return rule


def events(incident) -> list[tuple[str, int]]:
    return list(incident.deliveries.order_by("id").values_list("event", "sequence"))


def test_firing_reminders_and_resolution(hook):
    dead = Channel.objects.create(name="off", kind="webhook", url="http://x.test/", enabled=False)
    rule = make_rule(hook, dead)
    failing()
    first = run_pass(T0)
    incident = Incident.objects.get()
    assert first.opened == [incident.pk]
    assert (incident.key, incident.site_id, incident.app_type) == (
        "site=*;app=app1_chat",
        None,
        "app1_chat",
    )
    assert incident.last_value == 0.6
    assert events(incident) == [("firing", 0)]  # the disabled channel gets nothing
    # Still firing: the value is updated, nothing more is sent until a reminder is due.
    run_pass(T0 + dt.timedelta(minutes=1))
    assert events(incident) == [("firing", 0)]
    failing(at=T0 + dt.timedelta(minutes=61))
    run_pass(T0 + dt.timedelta(minutes=61))
    run_pass(T0 + dt.timedelta(minutes=62))
    assert events(incident) == [("firing", 0), ("reminder", 1)]
    # Recovery: one resolved message, the incident closes; the next pass opens a new one.
    run_pass(T0 + dt.timedelta(minutes=200))
    incident.refresh_from_db()
    assert incident.resolved_at == T0 + dt.timedelta(minutes=200)
    assert events(incident) == [("firing", 0), ("reminder", 1), ("resolved", 0)]
    run_pass(T0 + dt.timedelta(minutes=201))
    assert Delivery.objects.count() == 3
    assert rule.incidents.count() == 1


def test_acknowledged_and_zero_repeat_incidents_get_no_reminders(hook, bob):
    quiet = make_rule(hook, name="no reminders", repeat_minutes=0)
    acked = make_rule(hook, name="acknowledged", site_id=1)
    failing()
    run_pass(T0)
    from aimonitor.operations.incidents import acknowledge_incident

    acknowledge_incident(bob, acked.incidents.get().pk)
    failing(at=T0 + dt.timedelta(minutes=130))
    run_pass(T0 + dt.timedelta(minutes=130))
    for rule in (quiet, acked):
        assert events(rule.incidents.get()) == [("firing", 0)]


def test_each_app_on_its_own_and_per_site_keys(hook):
    make_rule(hook, site_id=1)
    failing(site_id=1, app_type="app1_chat")
    failing(site_id=1, app_type="app3_clue")
    failing(site_id=2, app_type="app2_summary")  # another site: not this rule's
    run_pass(T0)
    assert sorted(Incident.objects.values_list("key", flat=True)) == [
        "site=1;app=app1_chat",
        "site=1;app=app3_clue",
    ]


def test_switching_a_rule_off_resolves_its_incidents(hook):
    rule = make_rule(hook)
    failing()
    run_pass(T0)
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    run_pass(T0 + dt.timedelta(minutes=1))
    assert events(Incident.objects.get()) == [("firing", 0), ("resolved", 0)]


def test_a_second_pass_at_once_is_skipped(hook, django_db_blocker):
    """Passes are serialised by an advisory lock held for the pass's transaction."""
    import threading

    from django.db import connection, transaction

    make_rule(hook)
    failing()
    results = []
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [0x41494D4E])

        def other():
            from django.db import connections

            try:
                results.append(run_pass(T0))
            finally:
                connections.close_all()

        # The test database is shared with the thread only when committed; the lock is
        # what matters here: the other pass cannot take it and skips.
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert results and results[0].ran is False


# The page ----------------------------------------------------------------------------


@pytest.fixture
def incidents(hook):
    """An incident on site 1, one on site 2, one of an every-site rule, one resolved."""
    make_rule(hook, name="site one", site_id=1)
    make_rule(hook, name="site two", site_id=2, app_type="app9_othersite")
    make_rule(hook, name="every site")
    failing(site_id=1)
    failing(site_id=2, app_type="app9_othersite")
    run_pass(T0)
    old = make_rule(hook, name="old one", site_id=1, app_type="app5_old")
    failing(site_id=1, app_type="app5_old", at=T0 - dt.timedelta(minutes=30))
    run_pass(T0 - dt.timedelta(minutes=30))
    run_pass(T0)
    assert old.incidents.get().resolved_at is not None
    return {i.rule.name: i for i in Incident.objects.select_related("rule")}


def test_the_page_shows_the_users_sites_open_first(client, bob, incidents):
    page = client_for(client, bob).get("/incidents/")
    assert page.status_code == 200
    text = page.text
    assert "site one" in text and "old one" in text
    assert "site two" not in text and "app9_othersite" not in text
    assert "every site" not in text  # sums sites bob may not see
    assert text.index("site one") < text.index("old one")  # open first
    assert 'data-delivery="firing-0"' in text and 'data-delivery="resolved-0"' in text


def test_every_site_people_see_every_incident(client, root, incidents):
    text = client_for(client, root).get("/incidents/").text
    assert all(name in text for name in incidents)


def test_site_filter_narrows_and_checks_access(client, alice, incidents):
    client_for(client, alice)
    text = client.get("/incidents/?site=2").text
    assert "site two" in text and "site one" not in text
    assert client.get("/incidents/?site=3").status_code == 403
    refused = client.get("/incidents/?site=abc")
    assert refused.status_code == 400 and "site: Enter a whole number." in refused.text


def test_operator_acknowledges_an_incident(client, bob, incidents):
    incident = incidents["site one"]
    response = client_for(client, bob).post(f"/incidents/{incident.pk}/ack/")
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.acknowledged_by == bob and incident.acknowledged_at is not None
    event = AuditEvent.objects.get(target_table="alerts_incident")
    assert (event.action, event.target_ids, event.site_id, event.actor) == (
        "acknowledge",
        [incident.pk],
        1,
        bob,
    )
    # Twice: nothing changes, nothing more is audited.
    client.post(f"/incidents/{incident.pk}/ack/")
    assert AuditEvent.objects.count() == 1
    assert "acknowledged by bob" in client.get("/incidents/").text


def test_acknowledging_is_refused_outside_scope_and_role(client, bob, charlie, incidents):
    client_for(client, bob)
    assert client.post(f"/incidents/{incidents['site two'].pk}/ack/").status_code == 404
    assert client.post(f"/incidents/{incidents['every site'].pk}/ack/").status_code == 404
    assert client.post("/incidents/999999/ack/").status_code == 404
    assert client.get(f"/incidents/{incidents['site one'].pk}/ack/").status_code == 405
    client_for(client, charlie)
    assert client.post(f"/incidents/{incidents['site two'].pk}/ack/").status_code == 403
    assert not Incident.objects.filter(acknowledged_at__isnull=False).exists()
    assert not AuditEvent.objects.exists()


def test_dashboard_panel_and_json_show_open_incidents(client, bob, incidents):
    client_for(client, bob)
    panel = client.get("/dashboard/panels/incidents/", headers={"HX-Request": "true"})
    assert "site one" in panel.text and "site two" not in panel.text and "old one" not in panel.text
    data = client.get("/dashboard.json").json()
    assert [row["rule"] for row in data["incidents"]] == ["site one"]


def test_anonymous_is_sent_to_login(client, incidents):
    assert client.get("/incidents/").status_code == 302


def test_an_edited_rule_updates_its_open_incidents_terms(hook):
    rule = make_rule(hook)
    failing()
    run_pass(T0)
    AlertRule.objects.filter(pk=rule.pk).update(threshold=0.4, window_minutes=20)
    run_pass(T0 + dt.timedelta(minutes=1))
    incident = Incident.objects.get()
    assert (incident.threshold, incident.window_minutes, incident.resolved_at) == (0.4, 20, None)
