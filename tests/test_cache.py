"""Cache: /cache/ (filters, CSV) and invalidation in two steps (preview → confirm), the
operation's exact count and audit, and the admin action."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from aimonitor.models import AuditEvent, CacheEntry
from aimonitor.operations.cache import invalidate_cache
from tests.conftest import client_for, make_cache, make_user

TABLE = f'"{CacheEntry._meta.db_table}"'


def sql_ids(where: str = "TRUE", params=()) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {TABLE} WHERE {where} ORDER BY created_at DESC, id DESC", params
        )
        return [row[0] for row in cursor.fetchall()]


def statuses() -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, status FROM {TABLE}")
        return dict(cursor.fetchall())


def page_ids(response) -> list[int]:
    return [entry.pk for entry in response.context["page"].object_list]


def invalidations():
    return AuditEvent.objects.filter(action="invalidate", target_table="ai_cache")


@pytest.fixture
def entries(db):
    return {
        "clue_42": make_cache(site_id=1, cache_type="app3_clue", target_id="42"),
        "clue_43": make_cache(site_id=1, cache_type="app3_clue", target_id="43"),
        "chat_42": make_cache(site_id=1, cache_type="app1_chat", target_id="42"),
        "old_42": make_cache(
            site_id=1, cache_type="app3_clue", target_id="42", status="invalidated"
        ),
        "odd_42": make_cache(site_id=1, cache_type="app3_clue", target_id="42", status="stale"),
        "site2_42": make_cache(site_id=2, cache_type="app3_clue", target_id="42"),
        "site3_42": make_cache(site_id=3, cache_type="app3_clue", target_id="42"),
    }


# --- The list -----------------------------------------------------------------


@pytest.mark.parametrize(
    "params,where,sql_params",
    [
        ({}, "TRUE", []),
        ({"cache_type": "app1_chat"}, "cache_type = %s", ["app1_chat"]),
        ({"target_id": "42"}, "target_id = %s", ["42"]),
        ({"status": "invalidated"}, "status = %s", ["invalidated"]),
        ({"site": "2", "target_id": "42"}, "site_id = 2 AND target_id = %s", ["42"]),
    ],
)
def test_filters_select_the_same_rows_as_sql(client, alice, entries, params, where, sql_params):
    response = client_for(client, alice).get("/cache/", params)
    expected = sql_ids(f"site_id IN (1, 2) AND {where}", sql_params)
    assert response.status_code == 200
    assert page_ids(response) == expected
    assert response.context["page"].count == len(expected)


def test_csv_is_the_filtered_rows_without_results(client, alice, entries):
    response = client_for(client, alice).get("/cache/", {"target_id": "42", "format": "csv"})
    text = b"".join(response.streaming_content).decode()
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [int(row["id"]) for row in rows] == sql_ids("site_id IN (1, 2) AND target_id = '42'")
    assert "result_json" not in rows[0]


@pytest.mark.parametrize(
    "params",
    [
        {"target_id": "4 2"},
        {"target_id": "x" * 65},
        {"cache_type": "a b"},
        {"status": "x" * 33},
        {"date_from": "2026-13-45"},
        {"site": "-1"},
    ],
)
def test_bad_filter_values_are_400(client, alice, params):
    response = client_for(client, alice).get("/cache/", params)
    assert response.status_code == 400
    assert 'class="errorlist' in response.text


def test_other_site_filter_is_403(client, bob, entries):
    assert client_for(client, bob).get("/cache/", {"site": 2}).status_code == 403


def test_invalidate_form_only_for_those_who_may(client, bob, charlie, entries):
    assert 'id="invalidate"' in client_for(client, bob).get("/cache/").text
    assert 'id="invalidate"' not in client_for(client, charlie).get("/cache/").text


# --- Invalidation ----------------------------------------------------------------


def test_preview_counts_what_would_change_and_changes_nothing(client, bob, entries):
    before = statuses()
    response = client_for(client, bob).post("/cache/", {"site": 1, "member_id": 42})
    assert response.status_code == 200
    # clue_42, chat_42 and odd_42 (status 'stale' is not 'invalidated' either).
    assert 'id="invalidate-count" data-value="3"' in response.text
    for name in ("site", "cache_type", "member_id"):
        assert f'type="hidden" name="{name}"' in response.text
    assert 'name="confirm" value="yes"' in response.text
    assert statuses() == before
    assert not invalidations().exists()


def confirmed(client, data: dict) -> dict:
    """``data`` as its confirmation page posts it: with the ids the preview counted."""
    preview = client.post("/cache/", data)
    return {**data, "ids": preview.context["ids"], "confirm": "yes"}


def test_confirm_invalidates_exactly_the_matching_entries(client, bob, entries):
    client_for(client, bob)
    data = confirmed(client, {"site": 1, "cache_type": "app3_clue", "member_id": 42})
    response = client.post("/cache/", data, follow=True)
    assert response.redirect_chain[-1][0] == "/cache/?site=1&cache_type=app3_clue&target_id=42"
    assert "Invalidated 2 cache entries." in response.text
    changed = {entries["clue_42"].pk, entries["odd_42"].pk}
    for name, entry in entries.items():
        entry.refresh_from_db()
        if entry.pk in changed:
            assert entry.status == "invalidated", name
    assert entries["clue_43"].status == "valid"
    assert entries["chat_42"].status == "valid"
    assert entries["site2_42"].status == "valid"
    assert entries["site3_42"].status == "valid"
    event = invalidations().get()
    assert event.actor == bob and event.actor_username == "bob"
    assert event.site_id == 1
    assert event.target_ids == sorted(changed)
    assert event.details["count"] == 2 and event.details["cache_type"] == "app3_clue"
    # Sent again: nothing left to change, and it says so.
    again = client.post("/cache/", data, follow=True)
    assert "Invalidated 0 cache entries." in again.text


def test_site_only_invalidates_the_whole_site(client, alice, entries):
    client_for(client, alice)
    client.post("/cache/", confirmed(client, {"site": 2}))
    assert sql_ids("status <> 'invalidated'") == sql_ids("site_id <> 2 AND status <> 'invalidated'")
    assert invalidations().get().target_ids == [entries["site2_42"].pk]


def test_confirm_acts_on_the_previewed_entries_only(client, bob, entries):
    # Issue #12.4: entries that begin to match between the preview and the confirm
    # are not invalidated; the confirmation acts on exactly what it showed.
    client_for(client, bob)
    data = confirmed(client, {"site": 1, "member_id": 42})
    previewed = sorted(int(i) for i in data["ids"].split(","))
    late = make_cache(site_id=1, target_id="42", cache_type="app3_clue")
    response = client.post("/cache/", data, follow=True)
    assert "Invalidated 3 cache entries." in response.text
    late.refresh_from_db()
    assert late.status == "valid"
    assert invalidations().get().target_ids == previewed


def test_confirm_without_its_ids_changes_nothing(client, bob, entries):
    before = statuses()
    response = client_for(client, bob).post("/cache/", {"site": 1, "confirm": "yes"})
    assert response.status_code == 400
    assert "This confirmation does not list its entries" in response.text
    assert statuses() == before


def test_preview_over_the_confirm_limit_is_refused(client, bob, entries, monkeypatch):
    monkeypatch.setattr("dashboard.cache.CONFIRM_LIMIT", 2)
    monkeypatch.setattr("aimonitor.operations.cache.CONFIRM_LIMIT", 2)
    response = client_for(client, bob).post("/cache/", {"site": 1})
    assert response.status_code == 400
    assert "at most 2 can be invalidated at once" in response.text
    assert 'name="confirm"' not in response.text


def test_reports_the_number_really_changed(bob, entries):
    # Someone else invalidates one of them between the preview and the confirm.
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET status = 'invalidated' WHERE id = %s", [entries["chat_42"].pk]
        )
    done = invalidate_cache(bob, 1, member_id=42)
    assert done.count == 2
    assert done.ids == sorted([entries["clue_42"].pk, entries["odd_42"].pk])


def test_invalidation_refusals(client, bob, charlie, entries):
    before = statuses()
    client_for(client, charlie)  # a viewer, on their own site
    assert client.post("/cache/", {"site": 2, "confirm": "yes"}).status_code == 403
    client_for(client, bob)
    assert client.post("/cache/", {"site": 2}).status_code == 403
    assert client.post("/cache/", {"site": 2, "confirm": "yes"}).status_code == 403
    assert client.post("/cache/", {"site": 99, "confirm": "yes"}).status_code == 403
    for bad in (
        {},
        {"site": "abc"},
        {"site": 1, "member_id": "abc"},
        {"site": 1, "cache_type": "a b"},
        {"site": 1, "confirm": "sure"},
    ):
        response = client.post("/cache/", bad)
        assert response.status_code == 400, bad
        assert 'class="errorlist"' in response.text
    assert client.put("/cache/").status_code == 405
    assert statuses() == before
    assert not invalidations().exists()


def test_invalidation_needs_login(client, entries):
    response = client.post("/cache/", {"site": 1, "confirm": "yes"})
    assert response.status_code == 302
    assert entries["clue_42"].status == "valid"


# --- Django admin -------------------------------------------------------------------


def test_admin_action_invalidates_through_the_same_operation(client, alice, entries):
    chosen = [entries["clue_43"].pk, entries["old_42"].pk, entries["site2_42"].pk]
    chosen.append(entries["site3_42"].pk)  # another site: not in alice's queryset
    response = client_for(client, alice).post(
        "/admin/aimonitor/cacheentry/",
        {"action": "invalidate_entries", "_selected_action": chosen},
        follow=True,
    )
    assert "Invalidated 2 cache entries." in response.text
    events = invalidations().order_by("site_id")
    assert [(e.site_id, e.target_ids) for e in events] == [
        (1, [entries["clue_43"].pk]),
        (2, [entries["site2_42"].pk]),
    ]
    entries["site3_42"].refresh_from_db()
    assert entries["site3_42"].status == "valid"


def test_admin_action_needs_the_permission(client, entries):
    staff_viewer = make_user("vic", "viewer", sites=[1])
    staff_viewer.is_staff = True
    staff_viewer.save()
    staff_viewer.user_permissions.add(Permission.objects.get(codename="view_cacheentry"))
    client_for(client, staff_viewer)
    assert "invalidate_entries" not in client.get("/admin/aimonitor/cacheentry/").text
    client.post(
        "/admin/aimonitor/cacheentry/",
        {"action": "invalidate_entries", "_selected_action": [entries["clue_42"].pk]},
    )
    entries["clue_42"].refresh_from_db()
    assert entries["clue_42"].status == "valid"
    assert not invalidations().exists()


def test_list_runs_a_fixed_number_of_queries(client, alice):
    client_for(client, alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/cache/", {"page_size": 100}).status_code == 200
        return len(captured)

    make_cache(site_id=1)
    few = queries()
    for _ in range(40):
        make_cache(site_id=1)
        make_cache(site_id=2)
    assert queries() == few
