"""Alerts: the triage list, inline acknowledge / ignore / reopen, bulk actions, the admin
actions, and the audit trail each of them leaves (SPEC.md §4 Alerts, §7)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission
from django.db import connection, connections, transaction
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aimonitor.models import AuditEvent, RunLog
from aimonitor.operations import BULK_LIMIT
from aimonitor.operations.alerts import set_alert_status
from aimonitor.scope import Scope
from alerts.views import attach_triage_events
from tests.conftest import client_for, make_run, make_user

TABLE = '"biz"."ai_run_logs"'
HTMX = {"HTTP_HX_REQUEST": "true"}
ALERT_SQL = "status IN ('failed', 'timeout', 'circuit_open')"


def make_alert(**fields) -> RunLog:
    fields.setdefault("status", "failed")
    fields.setdefault("error_message", "upstream timed out")
    return make_run(**fields)


def bulk_alerts(n: int, **fields) -> list[RunLog]:
    now = timezone.now()
    values = {
        "site_id": 1,
        "app_type": "app1_chat",
        "trigger_type": "event",
        "status": "failed",
        "created_at": now,
    }
    values.update(fields)
    return RunLog.objects.bulk_create([RunLog(**values) for _ in range(n)])


def audit_for(run: RunLog):
    return list(AuditEvent.objects.about("ai_run_logs", run.id).order_by("id"))


def sql_count(where: str, params=()) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {TABLE} WHERE {where}", params)
        return cursor.fetchone()[0]


def nav_count(html: str) -> str:
    match = re.search(
        r'<span id="nav-alert-count"[^>]*hx-swap-oob="true"[^>]*>([^<]*)</span>', html
    )
    assert match, "the response carries the nav count out of band"
    return match.group(1)


# --- The list -----------------------------------------------------------------

DAY = dt.date(2026, 3, 10)


@pytest.fixture
def mixed_rows(db):
    """Every combination of site, app, status, alert state and time around two day edges."""
    zone = ZoneInfo(settings.TIME_ZONE)

    def at(days, *hms):
        return dt.datetime.combine(DAY + dt.timedelta(days=days), dt.time(*hms), tzinfo=zone)

    moments = [at(-1, 12), at(0, 0, 0, 0), at(0, 23, 59, 59), at(1, 0, 0, 0)]
    RunLog.objects.bulk_create(
        RunLog(
            site_id=site,
            app_type=app,
            trigger_type="event",
            status=status,
            alert_status=state,
            error_message="boom" if status != "success" else None,
            created_at=when,
        )
        for site, app, status, state, when in itertools.product(
            [1, 2, 3],
            ["app1_chat", "app3_clue"],
            ["failed", "timeout", "circuit_open", "success", "running"],
            [None, "pending", "acknowledged", "ignored"],
            moments,
        )
    )


def local_start(day: str) -> str:
    # The start of a local day, computed by PostgreSQL rather than by the console's code.
    return f"(DATE '{day}')::timestamp AT TIME ZONE '{settings.TIME_ZONE}'"


PENDING_SQL = "(alert_status IS NULL OR alert_status = 'pending')"
FILTER_CASES = [
    ({}, PENDING_SQL),
    ({"alert_status": "pending"}, PENDING_SQL),
    ({"alert_status": "acknowledged"}, "alert_status = 'acknowledged'"),
    ({"alert_status": "ignored"}, "alert_status = 'ignored'"),
    ({"alert_status": "all"}, "TRUE"),
    ({"app_type": "app3_clue"}, f"{PENDING_SQL} AND app_type = 'app3_clue'"),
    ({"site": "2", "alert_status": "all"}, "site_id = 2"),
    ({"date_from": "2026-03-10"}, f"{PENDING_SQL} AND created_at >= {local_start('2026-03-10')}"),
    ({"date_to": "2026-03-10"}, f"{PENDING_SQL} AND created_at < {local_start('2026-03-11')}"),
    (
        {"date_from": "2026-03-10", "date_to": "2026-03-10", "alert_status": "all"},
        f"created_at >= {local_start('2026-03-10')} AND created_at < {local_start('2026-03-11')}",
    ),
    (
        {
            "alert_status": "ignored",
            "site": "1",
            "app_type": "app1_chat",
            "date_from": "2026-03-09",
            "date_to": "2026-03-10",
        },
        "alert_status = 'ignored' AND site_id = 1 AND app_type = 'app1_chat' "
        f"AND created_at >= {local_start('2026-03-09')} AND created_at < {local_start('2026-03-11')}",
    ),
]


@pytest.mark.parametrize("params,where", FILTER_CASES)
def test_list_counts_equal_sql_counts(client, alice, mixed_rows, params, where):
    response = client_for(client, alice).get("/alerts/", params)
    expected = sql_count(f"{ALERT_SQL} AND site_id IN (1, 2) AND {where}")
    assert response.status_code == 200
    assert expected > 0
    assert response.context["page"].count == expected
    assert re.search(rf"of\s+{expected}\b", response.text)  # the figure on the page


@pytest.mark.parametrize("params,where", FILTER_CASES)
def test_csv_has_the_same_rows(client, alice, mixed_rows, params, where):
    response = client_for(client, alice).get("/alerts/", {**params, "format": "csv"})
    lines = b"".join(response.streaming_content).decode("utf-8-sig").strip().splitlines()
    assert lines[0].startswith("id,created_at,site_id,site_name,app_type")
    assert len(lines) - 1 == sql_count(f"{ALERT_SQL} AND site_id IN (1, 2) AND {where}")


def test_default_list_shows_pending_alerts_only(client, bob):
    null_state = make_alert(alert_status=None)
    pending = make_alert(status="timeout", alert_status="pending")
    handled = make_alert(status="circuit_open", alert_status="acknowledged")
    ignored = make_alert(alert_status="ignored")
    fine = make_run(status="success")
    other_site = make_alert(site_id=2)
    html = client_for(client, bob).get("/alerts/").text
    for shown in (null_state, pending):
        assert f'id="alert-{shown.id}"' in html
    for hidden in (handled, ignored, fine, other_site):
        assert f'id="alert-{hidden.id}"' not in html


def test_row_shows_app_status_error_member_site_and_when(client, bob):
    run = make_alert(
        app_type="app3_clue",
        status="circuit_open",
        member_id=987654,
        error_message="breaker open for app3",
    )
    html = client_for(client, bob).get("/alerts/").text
    row = html[html.index(f'id="alert-{run.id}"') :]
    row = row[: row.index("</tr>")]
    for text in ("app3_clue", "circuit open", "breaker open for app3", "987654", "Site 1"):
        assert text in row
    assert timezone.localtime(run.created_at).strftime("%Y-%m-%d %H:%M") in row


def test_handled_rows_show_who_and_when(client, bob):
    run = make_alert()
    set_alert_status(bob, [run.id], "acknowledge")
    html = client_for(client, bob).get("/alerts/", {"alert_status": "acknowledged"}).text
    row = html[html.index(f'id="alert-{run.id}"') :]
    row = row[: row.index("</tr>")]
    assert "acknowledged by bob" in row
    assert "now" in row  # naturaltime: "now" / "a second ago"


def test_who_handled_is_fetched_in_one_query_for_the_whole_page(client, bob):
    def queries_for_page_with(n):
        RunLog.objects.all().delete()
        runs = bulk_alerts(n)
        for run in runs:
            set_alert_status(bob, [run.id], "ignore")
        with CaptureQueriesContext(connection) as ctx:
            response = client.get("/alerts/", {"alert_status": "ignored"})
        assert response.text.count("ignored by bob") == n
        return len(ctx.captured_queries)

    client_for(client, bob)
    assert queries_for_page_with(2) == queries_for_page_with(20)


def test_newest_event_wins(client, bob):
    run = make_alert()
    set_alert_status(bob, [run.id], "acknowledge")
    set_alert_status(bob, [run.id], "reopen")
    html = client_for(client, bob).get("/alerts/").text
    assert "reopened by bob" in html
    assert "acknowledged by bob" not in html


def test_htmx_filter_returns_the_results_fragment(client, bob):
    run = make_alert()
    response = client_for(client, bob).get("/alerts/", {"alert_status": "all"}, **HTMX)
    assert response.status_code == 200
    assert f'id="alert-{run.id}"' in response.text
    assert "<html" not in response.text


def test_viewer_sees_own_sites_alerts_without_actions(client, charlie):
    mine = make_alert(site_id=2)
    make_alert(site_id=1)
    response = client_for(client, charlie).get("/alerts/")
    assert response.status_code == 200
    assert response.context["page"].count == 1
    assert f'id="alert-{mine.id}"' in response.text
    assert "/ack/" not in response.text
    assert 'id="bulk-form"' not in response.text


def test_site_outside_the_users_sites_is_403(client, bob):
    assert client_for(client, bob).get("/alerts/", {"site": "2"}).status_code == 403


@pytest.mark.parametrize(
    "params",
    [
        {"alert_status": "bogus"},
        {"date_from": "yesterday"},
        {"site": "99999999999999999999"},
        {"app_type": "x<y"},
        {"app_type": "x  y"},  # one space between words, not a run of them
        {"date_from": "2026-03-02", "date_to": "2026-03-01"},
    ],
)
def test_bad_filters_are_400_with_the_error_shown(client, bob, params):
    response = client_for(client, bob).get("/alerts/", params)
    assert response.status_code == 400
    assert 'class="errorlist' in response.text


def test_anonymous_is_sent_to_login(client):
    response = client.get("/alerts/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


# --- Inline acknowledge / ignore / reopen -------------------------------------

TRANSITIONS = [
    ("ack", None, "acknowledge", "acknowledged"),
    ("ack", "ignored", "acknowledge", "acknowledged"),
    ("ignore", "pending", "ignore", "ignored"),
    ("ignore", "acknowledged", "ignore", "ignored"),
    ("reopen", "acknowledged", "reopen", "pending"),
    ("reopen", "ignored", "reopen", "pending"),
]


@pytest.mark.parametrize("verb,before,action,after", TRANSITIONS)
def test_each_transition_changes_the_row_and_is_audited(client, bob, verb, before, action, after):
    run = make_alert(alert_status=before)
    response = client_for(client, bob).post(f"/alerts/{run.id}/{verb}/")
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.alert_status == after
    [event] = audit_for(run)
    assert event.action == action
    assert event.actor == bob and event.actor_username == "bob"
    assert event.target_table == "ai_run_logs"
    assert event.target_ids == [run.id]
    assert event.site_id == 1
    assert event.details == {"from": before or "pending", "to": after}


def test_htmx_post_returns_the_row_and_the_new_nav_count(client, bob):
    run, *_ = [make_alert() for _ in range(3)]
    response = client_for(client, bob).post(f"/alerts/{run.id}/ack/", **HTMX)
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html
    assert html.lstrip().startswith(f'<tr id="alert-{run.id}"')
    assert "acknowledged by bob" in html
    assert f'hx-post="/alerts/{run.id}/reopen/"' in html
    assert f'hx-post="/alerts/{run.id}/ack/"' not in html  # already acknowledged
    assert nav_count(html) == "2"
    assert 'type="checkbox"' in html


def test_htmx_row_for_another_page_keeps_its_layout(client, bob):
    """The dashboard's panel asks for the compact row (no bulk checkbox)."""
    run = make_alert()
    response = client_for(client, bob).post(
        f"/alerts/{run.id}/ignore/", {"layout": "compact", "next": "/"}, **HTMX
    )
    assert 'type="checkbox"' not in response.text
    assert 'name="next" value="/"' in response.text
    assert nav_count(response.text) == "0"


def test_row_partial_renders_on_any_page(rf, bob):
    """The dashboard includes "alerts/alerts.html#alert_row" with an alert of its own."""
    run = make_alert()
    set_alert_status(bob, [run.id], "ignore")
    [run] = RunLog.objects.visible_to(Scope.for_user(bob)).filter(pk=run.id)
    attach_triage_events([run])
    request = rf.get("/")
    request.user = bob
    html = render_to_string(
        "alerts/alerts.html#alert_row", {"alert": run, "layout": "compact"}, request=request
    )
    assert html.strip().startswith(f'<tr id="alert-{run.id}"')
    assert f'hx-post="/alerts/{run.id}/reopen/"' in html
    assert f'hx-target="#alert-{run.id}"' in html
    assert 'name="next" value="/"' in html
    assert "ignored by bob" in html
    assert 'type="checkbox"' not in html


def test_plain_post_redirects_back_to_the_same_filtered_page(client, bob):
    run = make_alert(app_type="app3_clue")
    back = "/alerts/?app_type=app3_clue&site=1"
    response = client_for(client, bob).post(f"/alerts/{run.id}/ack/", {"next": back})
    assert response.status_code == 302
    assert response["Location"] == back
    page = client.get(back)
    assert f"Alert #{run.id} is now acknowledged." in page.text
    assert ">0</span>" in page.text  # the nav's pending count after the write


@pytest.mark.parametrize("next_url", ["https://evil.example/", "//evil.example/", ""])
def test_foreign_next_falls_back_to_the_alerts_page(client, bob, next_url):
    run = make_alert()
    response = client_for(client, bob).post(f"/alerts/{run.id}/ignore/", {"next": next_url})
    assert response["Location"] == "/alerts/"


def test_acknowledging_twice_is_harmless_and_says_so(client, bob):
    run = make_alert()
    client_for(client, bob)
    client.post(f"/alerts/{run.id}/ack/")
    response = client.post(f"/alerts/{run.id}/ack/", **HTMX)
    assert response.status_code == 200
    assert "already acknowledged" in response.text
    run.refresh_from_db()
    assert run.alert_status == "acknowledged"
    assert len(audit_for(run)) == 1  # no second event: nothing changed
    response = client.post(f"/alerts/{run.id}/ack/", follow=True)
    assert "already acknowledged" in response.text
    assert len(audit_for(run)) == 1


def test_reopening_a_pending_alert_changes_nothing(client, bob):
    run = make_alert(alert_status=None)
    client_for(client, bob).post(f"/alerts/{run.id}/reopen/")
    run.refresh_from_db()
    assert run.alert_status is None
    assert audit_for(run) == []


def refused(run: RunLog, before) -> None:
    run.refresh_from_db()
    assert run.alert_status == before
    assert audit_for(run) == []


@pytest.mark.parametrize("verb", ["ack", "ignore", "reopen"])
def test_a_successful_call_is_not_an_alert(client, bob, verb):
    run = make_run(status="success", alert_status="acknowledged")
    assert client_for(client, bob).post(f"/alerts/{run.id}/{verb}/").status_code == 404
    refused(run, "acknowledged")


@pytest.mark.parametrize("verb", ["ack", "ignore", "reopen"])
def test_another_sites_alert_is_not_found(client, bob, verb):
    run = make_alert(site_id=2, alert_status="ignored")
    assert client_for(client, bob).post(f"/alerts/{run.id}/{verb}/", **HTMX).status_code == 404
    refused(run, "ignored")


def test_htmx_refusal_replaces_the_row_with_the_reason(client, bob, charlie):
    theirs = make_alert(site_id=2)
    response = client_for(client, bob).post(f"/alerts/{theirs.id}/ack/", **HTMX)
    assert response.status_code == 404
    assert response.text.lstrip().startswith(f'<tr id="alert-{theirs.id}"')
    assert "Nothing was changed." in response.text
    response = client_for(client, charlie).post(f"/alerts/{theirs.id}/ack/", **HTMX)
    assert response.status_code == 403
    assert "You may not change alerts." in response.text
    refused(theirs, None)


def test_unknown_and_oversized_ids_are_not_found(client, bob):
    client_for(client, bob)
    assert client.post("/alerts/999999999/ack/").status_code == 404
    assert client.post("/alerts/99999999999999999999999/ack/").status_code == 404


def test_get_is_405(client, bob):
    run = make_alert()
    for verb in ("ack", "ignore", "reopen"):
        assert client_for(client, bob).get(f"/alerts/{run.id}/{verb}/").status_code == 405
    refused(run, None)


def test_viewer_is_403(client, charlie):
    run = make_alert(site_id=2)
    for verb in ("ack", "ignore", "reopen"):
        assert client_for(client, charlie).post(f"/alerts/{run.id}/{verb}/").status_code == 403
    refused(run, None)


def test_anonymous_post_changes_nothing(client, db):
    run = make_alert()
    response = client.post(f"/alerts/{run.id}/ack/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    refused(run, None)


# --- Bulk ---------------------------------------------------------------------


def test_bulk_selected_rows_confirm_then_act(client, alice):
    site1 = [make_alert(site_id=1) for _ in range(2)]
    site2 = make_alert(site_id=2)
    untouched = make_alert(site_id=1)
    ids = [r.id for r in (*site1, site2)]
    client_for(client, alice)

    step1 = client.post("/alerts/", {"action": "acknowledge", "ids": ids, "app_type": "app1_chat"})
    assert step1.status_code == 200
    assert "Acknowledge 3 alerts?" in step1.text
    assert 'data-value="3"' in step1.text
    assert f'name="ids" value="{",".join(map(str, sorted(ids, reverse=True)))}"' in step1.text
    assert 'name="app_type" value="app1_chat"' in step1.text
    for run in (*site1, site2):
        refused(run, None)  # nothing happens before the confirmation

    ids_value = re.search(r'name="ids" value="([^"]+)"', step1.text).group(1)
    step2 = client.post(
        "/alerts/",
        {"action": "acknowledge", "ids": ids_value, "confirm": "yes", "app_type": "app1_chat"},
    )
    assert step2.status_code == 302
    assert step2["Location"] == "/alerts/?app_type=app1_chat"
    for run in (*site1, site2):
        run.refresh_from_db()
        assert run.alert_status == "acknowledged"
    untouched.refresh_from_db()
    assert untouched.alert_status is None
    # One audit event per site, listing that site's ids.
    events = AuditEvent.objects.filter(action="acknowledge").order_by("site_id")
    assert [(e.site_id, e.target_ids) for e in events] == [
        (1, sorted(r.id for r in site1)),
        (2, [site2.id]),
    ]
    assert all(e.details == {"from": "pending", "to": "acknowledged"} for e in events)
    assert "3 alerts are now acknowledged." in client.get(step2["Location"]).text


def test_bulk_all_matching_the_filter(client, bob):
    matching = [make_alert(app_type="app3_clue") for _ in range(4)]
    other_app = make_alert(app_type="app1_chat")
    other_site = make_alert(app_type="app3_clue", site_id=2)
    client_for(client, bob)
    step1 = client.post(
        "/alerts/", {"action": "ignore", "scope": "filter", "app_type": "app3_clue"}
    )
    assert "Ignore 4 alerts?" in step1.text
    ids_value = re.search(r'name="ids" value="([^"]+)"', step1.text).group(1)
    client.post(
        "/alerts/",
        {
            "action": "ignore",
            "scope": "filter",
            "ids": ids_value,
            "confirm": "yes",
            "app_type": "app3_clue",
        },
    )
    assert set(RunLog.objects.filter(alert_status="ignored").values_list("id", flat=True)) == {
        r.id for r in matching
    }
    refused(other_app, None)
    refused(other_site, None)
    [event] = AuditEvent.objects.all()
    assert event.target_ids == sorted(r.id for r in matching) and event.site_id == 1


def test_bulk_mixed_states_are_described_and_already_handled_ones_left_alone(client, bob):
    pending = make_alert()
    ignored = make_alert(alert_status="ignored")
    done = make_alert(alert_status="acknowledged")
    client_for(client, bob)
    ids = [pending.id, ignored.id, done.id]
    step1 = client.post("/alerts/", {"action": "acknowledge", "ids": ids})
    assert "1 of them is already acknowledged" in step1.text
    response = client.post(
        "/alerts/",
        {"action": "acknowledge", "ids": ",".join(map(str, ids)), "confirm": "yes"},
        follow=True,
    )
    assert "2 alerts are now acknowledged." in response.text
    assert "1 alert was already acknowledged" in response.text
    [event] = AuditEvent.objects.all()
    assert event.target_ids == sorted([pending.id, ignored.id])
    assert event.details == {
        "from": "mixed",
        "to": "acknowledged",
        "from_ids": {"ignored": [ignored.id], "pending": [pending.id]},
    }


def test_bulk_over_the_cap_is_refused_and_changes_nothing(client, bob):
    bulk_alerts(BULK_LIMIT + 1, app_type="app9_big")
    client_for(client, bob)
    response = client.post(
        "/alerts/",
        {"action": "acknowledge", "scope": "filter", "app_type": "app9_big"},
        follow=True,
    )
    assert "More than 1,000 alerts were chosen" in response.text
    assert "Nothing was changed." in response.text
    assert response.redirect_chain[-1][0] == "/alerts/?app_type=app9_big"
    # Confirming more than the cap directly is refused too.
    ids = ",".join(map(str, RunLog.objects.values_list("id", flat=True)))
    response = client.post("/alerts/", {"action": "acknowledge", "ids": ids, "confirm": "yes"})
    assert response.status_code == 302
    assert RunLog.objects.filter(alert_status__isnull=False).count() == 0
    assert AuditEvent.objects.count() == 0


def test_bulk_at_the_cap_is_allowed(client, bob):
    bulk_alerts(BULK_LIMIT, app_type="app9_big")
    client_for(client, bob)
    step1 = client.post("/alerts/", {"action": "ignore", "scope": "filter", "app_type": "app9_big"})
    assert "Ignore 1,000 alerts?" in step1.text
    ids_value = re.search(r'name="ids" value="([^"]+)"', step1.text).group(1)
    client.post("/alerts/", {"action": "ignore", "ids": ids_value, "confirm": "yes"})
    assert RunLog.objects.filter(alert_status="ignored").count() == BULK_LIMIT
    assert AuditEvent.objects.get().target_ids.__len__() == BULK_LIMIT


def test_bulk_ignores_ids_outside_the_users_alerts(client, bob):
    mine = make_alert()
    theirs = make_alert(site_id=2)
    not_alert = make_run(status="success")
    client_for(client, bob)
    ids = [mine.id, theirs.id, not_alert.id]
    step1 = client.post("/alerts/", {"action": "acknowledge", "ids": ids})
    assert "Acknowledge 1 alert?" in step1.text
    # Even a forged confirmation cannot reach them.
    client.post(
        "/alerts/", {"action": "acknowledge", "ids": ",".join(map(str, ids)), "confirm": "yes"}
    )
    mine.refresh_from_db()
    assert mine.alert_status == "acknowledged"
    refused(theirs, None)
    refused(not_alert, None)


def test_bulk_with_nothing_chosen_changes_nothing(client, bob):
    run = make_alert()
    response = client_for(client, bob).post("/alerts/", {"action": "acknowledge"}, follow=True)
    assert "No alerts were chosen" in response.text
    refused(run, None)


def test_bulk_by_a_viewer_is_403(client, charlie):
    run = make_alert(site_id=2)
    client_for(client, charlie)
    assert client.post("/alerts/", {"action": "ignore", "ids": [run.id]}).status_code == 403
    response = client.post("/alerts/", {"action": "ignore", "ids": str(run.id), "confirm": "yes"})
    assert response.status_code == 403
    refused(run, None)


def test_bulk_filter_on_another_site_is_403(client, bob):
    run = make_alert(site_id=2)
    response = client_for(client, bob).post(
        "/alerts/", {"action": "ignore", "scope": "filter", "site": "2"}
    )
    assert response.status_code == 403
    refused(run, None)


@pytest.mark.parametrize(
    "data",
    [
        {"action": "delete", "ids": "1"},
        {"action": "acknowledge", "ids": "1,abc"},
        {"action": "acknowledge", "scope": "everything"},
        {"action": "acknowledge", "scope": "filter", "date_from": "nope"},
        {"action": "reopen", "ids": "1"},
    ],
)
def test_bulk_bad_input_is_400(client, bob, data):
    run = make_alert()
    response = client_for(client, bob).post("/alerts/", data)
    assert response.status_code == 400
    assert 'class="errorlist"' in response.text
    assert "Nothing was changed." in response.text
    refused(run, None)


# --- Django admin -------------------------------------------------------------


def test_admin_action_acknowledges_through_the_same_operation(client, alice):
    runs = [make_alert(site_id=1), make_alert(site_id=2)]
    fine = make_run(status="success")
    response = client_for(client, alice).post(
        "/admin/aimonitor/runlog/",
        {
            "action": "acknowledge_alerts",
            "_selected_action": [r.id for r in runs] + [fine.id],
            "index": "0",
            "select_across": "0",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "2 alerts are now acknowledged." in response.text
    assert "1 row is not an alert you can see" in response.text
    for run in runs:
        run.refresh_from_db()
        assert run.alert_status == "acknowledged"
    refused(fine, "acknowledged" if fine.alert_status else None)
    assert sorted(AuditEvent.objects.values_list("site_id", flat=True)) == [1, 2]


def test_admin_ignore_action(client, alice):
    run = make_alert(site_id=2)
    client_for(client, alice).post(
        "/admin/aimonitor/runlog/",
        {"action": "ignore_alerts", "_selected_action": [run.id], "index": "0"},
    )
    run.refresh_from_db()
    assert run.alert_status == "ignored"
    assert AuditEvent.objects.get().action == "ignore"


def test_admin_actions_need_the_triage_permission(client, db):
    staff = make_user("sam", "viewer", sites=[1])
    staff.is_staff = True
    staff.save()
    staff.user_permissions.add(Permission.objects.get(codename="view_runlog"))
    run = make_alert()
    client_for(client, staff)
    page = client.get("/admin/aimonitor/runlog/")
    assert page.status_code == 200
    assert "acknowledge_alerts" not in page.text
    client.post(
        "/admin/aimonitor/runlog/",
        {"action": "acknowledge_alerts", "_selected_action": [run.id], "index": "0"},
    )
    refused(run, None)


# --- Concurrency (real PostgreSQL, two connections) -----------------------------


def waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        # Statistics are a snapshot per transaction; the caller is inside one.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_acknowledge_racing_ignore_ends_in_one_state_with_both_audited(transactional_db, bob):
    run = make_alert()
    errors = []

    def act(action):
        try:
            set_alert_status(bob, [run.id], action)
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connections.close_all()

    # Hold the row so both requests arrive while it is locked, then let them race.
    with transaction.atomic():
        RunLog.objects.select_for_update().get(pk=run.id)
        threads = [threading.Thread(target=act, args=(a,)) for a in ("acknowledge", "ignore")]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert waiting_on_locks() == 2
    for thread in threads:
        thread.join(10)

    assert errors == []
    run.refresh_from_db()
    first, second = audit_for(run)
    assert {first.action, second.action} == {"acknowledge", "ignore"}
    # The second saw the first's result: the trail is one consistent chain.
    assert first.details["from"] == "pending"
    assert second.details["from"] == first.details["to"]
    assert run.alert_status == second.details["to"]
