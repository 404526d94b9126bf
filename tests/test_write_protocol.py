"""The write protocol itself (issue 15): ``permissions.require``, the ``Refused`` family
answered alike by every view, and the one bulk-action mixin shared by jobs, alerts and
cache."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import PermissionDenied
from django.test import override_settings
from django.urls import include, path
from django.views import View

from aimonitor import roles
from aimonitor.models import AuditEvent, CacheEntry, RunLog
from aimonitor.operations import CACHE_TABLE, JOBS_TABLE, RUN_LOGS_TABLE
from aimonitor.operations.refusals import (
    REFUSALS,
    Conflict,
    Invalid,
    NotFound,
    NotPermitted,
    Refused,
    TooMany,
)
from aimonitor.permissions import (
    ADMIN_PERMISSIONS,
    INVALIDATE_CACHE,
    OPERATOR_PERMISSIONS,
    REFUSAL_MESSAGES,
    RETRY_JOB,
    RUN_BATCH,
    TRIAGE_ALERT,
    VIEW_PROMPT,
    require,
)
from aimonitor.responses import RefusalMixin
from alerts.views import AlertListView
from dashboard.jobs import JobListView
from tests.conftest import client_for, make_cache, make_job, make_run

# --- Refused: one answer per status, for a page, an HTMX request and JSON --------------

STATUS = {NotPermitted: 403, NotFound: 404, Invalid: 400, TooMany: 400, Conflict: 409}
MESSAGE = "Refused for the protocol test."


def refusing_view(request, kind):
    """A function view: its refusal reaches ``RefusalMiddleware``."""
    raise {cls.__name__: cls for cls in REFUSALS}[kind](MESSAGE)


class RefusingView(RefusalMixin, View):
    """A class view with ``RefusalMixin`` and no page of its own."""

    def get(self, request, kind):
        return refusing_view(request, kind)


urlpatterns = [
    path("protocol/function/<str:kind>/", refusing_view),
    path("protocol/mixin/<str:kind>/", RefusingView.as_view()),
    path("", include("aimonitor.urls")),
]

KINDS = {
    "page": {},
    "htmx": {"HTTP_HX_REQUEST": "true"},
    "json": {"HTTP_ACCEPT": "application/json"},
}


def test_every_refusal_has_a_status():
    assert set(REFUSALS) == set(STATUS)
    for cls, status in STATUS.items():
        assert issubclass(cls, Refused) and cls(MESSAGE).status == status
    assert Refused(MESSAGE, 418).status == 418  # a status may be given
    assert issubclass(NotPermitted, PermissionDenied)


@override_settings(ROOT_URLCONF=__name__)
@pytest.mark.parametrize("where", ["function", "mixin"])
@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("refusal", REFUSALS, ids=lambda cls: cls.__name__)
def test_a_refusal_is_answered_with_its_status(client, bob, refusal, kind, where):
    client_for(client, bob)
    response = client.get(f"/protocol/{where}/{refusal.__name__}/", **KINDS[kind])
    assert response.status_code == STATUS[refusal]
    assert "HX-Request" in response["Vary"]
    if kind == "json":
        assert response["Content-Type"] == "application/json"
        assert json.loads(response.content) == {"error": MESSAGE, "status": STATUS[refusal]}
        return
    text = response.content.decode()
    if kind == "htmx":
        assert "<html" not in text and 'role="alert"' in text and MESSAGE in text
        return
    assert "<html" in text
    if refusal is NotFound:
        assert "Not found" in text  # the 404 page, as Django's own
    elif refusal is NotPermitted:
        assert "Not allowed" in text and MESSAGE in text  # the 403 page, as Django's own
    else:
        assert "This cannot be done" in text and MESSAGE in text


def test_an_operations_refusal_reaches_json_clients(client, bob, charlie):
    """A real write: acknowledging an incident that is not there, or without the role."""
    client_for(client, bob)
    missing = client.post("/incidents/999999/ack/", HTTP_ACCEPT="application/json")
    assert missing.status_code == 404 and json.loads(missing.content)["status"] == 404
    client_for(client, charlie)
    refused = client.post("/incidents/999999/ack/", HTTP_ACCEPT="application/json")
    assert refused.status_code == 403
    assert json.loads(refused.content)["error"] == str(REFUSAL_MESSAGES[TRIAGE_ALERT])


# --- require: each role holds exactly its permissions ---------------------------------

WRITE_PERMISSIONS = (TRIAGE_ALERT, RETRY_JOB, INVALIDATE_CACHE, RUN_BATCH, VIEW_PROMPT)
HELD = {
    "charlie": set(),  # viewer
    "bob": set(OPERATOR_PERMISSIONS),  # operator
    "alice": set(OPERATOR_PERMISSIONS) | set(ADMIN_PERMISSIONS),  # admin
    "root": set(WRITE_PERMISSIONS),  # superuser
}


def test_the_roles_are_built_from_the_permission_names():
    assert set(roles.ROLE_PERMISSIONS[roles.VIEWER]) == set()
    assert set(roles.ROLE_PERMISSIONS[roles.OPERATOR]) == set(OPERATOR_PERMISSIONS)
    assert set(WRITE_PERMISSIONS) <= set(roles.ROLE_PERMISSIONS[roles.ADMIN])


@pytest.mark.parametrize("perm", WRITE_PERMISSIONS)
@pytest.mark.parametrize("person", list(HELD))
def test_require_refuses_each_role_exactly_what_it_lacks(request, db, person, perm):
    user = request.getfixturevalue(person)
    if perm in HELD[person]:
        assert require(user, perm) is None
        return
    with pytest.raises(NotPermitted) as refused:
        require(user, perm)
    assert refused.value.status == 403
    if perm in REFUSAL_MESSAGES:
        assert refused.value.message == str(REFUSAL_MESSAGES[perm])


# --- the bulk mixin: the same cap and the same confirmed set for every list -------------


class Jobs:
    url, table = "/jobs/", JOBS_TABLE
    filters = {"event_type": "protocol"}
    over_cap = (400, "More than 2 jobs match")

    def make(self, site_id=1):
        return make_job(site_id=site_id, event_type="protocol", status="failed").pk

    def ask(self):
        return {"action": "retry", "select_across": "1", **self.filters}

    def confirm(self, ids):
        return {"action": "retry", **self.filters, "ids": ids, "confirm": "yes"}

    def changed(self):
        events = AuditEvent.objects.filter(target_table=JOBS_TABLE)
        return {event.details["retry_of"] for event in events}

    def cap(self, monkeypatch, limit):
        monkeypatch.setattr(JobListView, "bulk_limit", limit)


class Alerts(Jobs):
    url, table = "/alerts/", RUN_LOGS_TABLE
    filters = {"app_type": "app_protocol"}
    # Over the cap the alerts go back to the list with the message (pinned by test_alerts).
    over_cap = (302, "More than 2 alerts were chosen")

    def make(self, site_id=1):
        return make_run(site_id=site_id, app_type="app_protocol", status="failed").pk

    def ask(self):
        return {"action": "acknowledge", "scope": "filter", **self.filters}

    def confirm(self, ids):
        return {"action": "acknowledge", **self.filters, "ids": ids, "confirm": "yes"}

    def changed(self):
        return set(RunLog.objects.filter(alert_status="acknowledged").values_list("pk", flat=True))

    def cap(self, monkeypatch, limit):
        monkeypatch.setattr(AlertListView, "bulk_limit", limit)


class Cache(Jobs):
    url, table = "/cache/", CACHE_TABLE
    filters = {"site": 1, "cache_type": "protocol"}
    over_cap = (400, "More than 2 valid entries match")

    def make(self, site_id=1):
        return make_cache(site_id=site_id, cache_type="protocol").pk

    def ask(self):
        return dict(self.filters)

    def confirm(self, ids):
        return {**self.filters, "ids": ids, "confirm": "yes"}

    def changed(self):
        return set(CacheEntry.objects.filter(status="invalidated").values_list("pk", flat=True))

    def cap(self, monkeypatch, limit):
        monkeypatch.setattr("dashboard.cache.CONFIRM_LIMIT", limit)
        monkeypatch.setattr("aimonitor.operations.cache.CONFIRM_LIMIT", limit)


LISTS = [Jobs(), Alerts(), Cache()]


@pytest.mark.parametrize("bulk", LISTS, ids=lambda bulk: type(bulk).__name__)
def test_the_confirmation_acts_on_exactly_the_ids_it_showed(client, bob, bulk):
    shown = {bulk.make(), bulk.make()}
    client_for(client, bob)
    asked = client.post(bulk.url, bulk.ask())
    assert asked.status_code == 200 and 'name="confirm" value="yes"' in asked.text
    ids = asked.context["ids"]
    assert {int(pk) for pk in ids.split(",")} == shown
    assert bulk.changed() == set()  # asking changes nothing
    # A row that begins to match afterwards is not in the confirmation (the filter is not
    # run again, though the whole-filter choice is posted again), and a forged row of
    # another site is left alone.
    later, elsewhere = bulk.make(), bulk.make(site_id=2)
    done = client.post(bulk.url, {**bulk.ask(), **bulk.confirm(f"{ids},{elsewhere}")})
    assert done.status_code == 302
    assert bulk.changed() == shown and later not in bulk.changed()
    assert AuditEvent.objects.filter(target_table=bulk.table).exists()


@pytest.mark.parametrize("bulk", LISTS, ids=lambda bulk: type(bulk).__name__)
def test_a_selection_over_the_cap_is_refused_whole(client, bob, bulk, monkeypatch):
    bulk.cap(monkeypatch, 2)
    ids = ",".join(str(bulk.make()) for _ in range(3))
    client_for(client, bob)
    status, message = bulk.over_cap
    for data in (bulk.ask(), bulk.confirm(ids)):
        response = client.post(bulk.url, data, follow=status == 302)
        if status == 302:
            assert response.redirect_chain[-1][1] == 302
        else:
            assert response.status_code == status
            assert 'name="confirm"' not in response.text
        assert message in response.text and "Nothing was changed." in response.text
    assert bulk.changed() == set()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize("bulk", LISTS, ids=lambda bulk: type(bulk).__name__)
def test_a_viewer_is_refused_before_anything_is_read(client, charlie, bulk):
    ids = str(bulk.make(site_id=2))
    client_for(client, charlie)
    for data in (bulk.ask(), bulk.confirm(ids)):
        assert client.post(bulk.url, data).status_code == 403
    assert bulk.changed() == set()


@pytest.mark.parametrize("bulk", LISTS, ids=lambda bulk: type(bulk).__name__)
def test_nothing_chosen_changes_nothing_and_says_so(client, bob, bulk):
    bulk.make(site_id=2)  # matches, but not among bob's sites
    client_for(client, bob)
    response = client.post(bulk.url, bulk.ask(), follow=True)
    assert response.status_code == 200
    if isinstance(bulk, Cache):  # the preview says so itself: there is nothing to confirm
        assert 'id="invalidate-count" data-value="0"' in response.text
        assert 'name="confirm"' not in response.text
    else:  # back on the filtered list, with a warning
        assert response.redirect_chain[-1][0].startswith(bulk.url)
        assert "were chosen" in response.text or "were selected" in response.text
    assert bulk.changed() == set()
