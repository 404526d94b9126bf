"""The Django admin: raw AI records read-only, scoped to the user's sites."""

import pytest

from tests.conftest import client_for, make_cache, make_job, make_run

CHANGELISTS = [
    "/admin/aimonitor/runlog/",
    "/admin/aimonitor/triggerjob/",
    "/admin/aimonitor/cacheentry/",
]


@pytest.mark.parametrize("url", CHANGELISTS)
def test_admin_role_sees_change_lists(client, alice, url):
    assert client_for(client, alice).get(url).status_code == 200


def test_change_list_is_scoped_to_the_admins_sites(client, alice):
    visible = make_run(site_id=2, member_id=424242)
    hidden = make_run(site_id=3, member_id=535353)
    response = client_for(client, alice).get("/admin/aimonitor/runlog/")
    assert f"/admin/aimonitor/runlog/{visible.id}/change/" in response.text
    assert f"/admin/aimonitor/runlog/{hidden.id}/change/" not in response.text
    # The object page of another site is not found (admin redirects with a message).
    assert client.get(f"/admin/aimonitor/runlog/{hidden.id}/change/").status_code == 302


def test_superuser_sees_every_site(client, root):
    run = make_run(site_id=9)
    response = client_for(client, root).get("/admin/aimonitor/runlog/")
    assert f"/admin/aimonitor/runlog/{run.id}/change/" in response.text


@pytest.mark.parametrize(
    "factory,name", [(make_run, "runlog"), (make_job, "triggerjob"), (make_cache, "cacheentry")]
)
def test_records_are_read_only(client, alice, factory, name):
    row = factory(site_id=1)
    client_for(client, alice)
    detail = client.get(f"/admin/aimonitor/{name}/{row.id}/change/")
    assert detail.status_code == 200
    assert 'name="_save"' not in detail.text
    assert client.get(f"/admin/aimonitor/{name}/add/").status_code == 403
    assert client.get(f"/admin/aimonitor/{name}/{row.id}/delete/").status_code == 403
    assert (
        client.post(f"/admin/aimonitor/{name}/{row.id}/change/", {"status": "x"}).status_code == 403
    )


def test_search_by_member_id_and_error_text(client, alice):
    by_member = make_run(site_id=1, member_id=777001)
    by_error = make_run(site_id=1, status="failed", error_message="upstream exploded")
    client_for(client, alice)
    response = client.get("/admin/aimonitor/runlog/", {"q": "777001"})
    assert f"/{by_member.id}/change/" in response.text
    assert f"/{by_error.id}/change/" not in response.text
    response = client.get("/admin/aimonitor/runlog/", {"q": "exploded"})
    assert f"/{by_error.id}/change/" in response.text


def test_operator_and_viewer_have_no_admin(client, bob, charlie):
    assert client_for(client, bob).get("/admin/aimonitor/runlog/").status_code == 302
    assert client_for(client, charlie).get("/admin/").status_code == 302


def test_audit_events_cannot_be_edited(client, root):
    from aimonitor.models import AuditEvent

    event = AuditEvent.objects.record(
        actor=root, action="retry", target_table="ai_trigger_jobs", target_ids=[1], site_id=1
    )
    client_for(client, root)
    assert client.get(f"/admin/aimonitor/auditevent/{event.id}/change/").status_code == 200
    assert client.get(f"/admin/aimonitor/auditevent/{event.id}/delete/").status_code == 403
    assert client.get("/admin/aimonitor/auditevent/add/").status_code == 403


def test_a_site_limited_admin_cannot_rename_or_name_another_site(client, db):
    from aimonitor.models import AuditEvent, SiteName
    from tests.conftest import make_user

    SiteName.objects.create(site_id=1, name="First Store")
    SiteName.objects.create(site_id=2, name="Second Store")
    client.force_login(make_user("dora", "admin", sites=[2]))

    listing = client.get("/admin/aimonitor/sitename/")
    assert "Second Store" in listing.text and "First Store" not in listing.text
    client.post("/admin/aimonitor/sitename/1/change/", {"name": "Hijacked"})
    assert SiteName.objects.get(site_id=1).name == "First Store"
    refused = client.post("/admin/aimonitor/sitename/add/", {"site_id": 3, "name": "Mine now"})
    assert refused.status_code == 200
    assert "You do not have access to site 3." in refused.text
    assert not SiteName.objects.filter(site_id=3).exists()
    assert client.get("/admin/aimonitor/sitename/1/history/").status_code == 404
    assert client.get("/admin/aimonitor/siteaccess/").status_code == 403
    assert not AuditEvent.objects.exists()


def test_an_admin_rename_is_audited_with_who_what_and_site(client, db):
    from aimonitor.models import AuditEvent, SiteName
    from tests.conftest import make_user

    SiteName.objects.create(site_id=2, name="Second Store")
    dora = make_user("dora", "admin", sites=[2])
    client.force_login(dora)

    response = client.post("/admin/aimonitor/sitename/2/change/", {"name": "Harbour Store"})

    assert response.status_code == 302
    event = AuditEvent.objects.get()
    assert (event.actor, event.actor_username, event.action) == (dora, "dora", "admin_change")
    assert (event.target_table, event.target_ids, event.site_id) == (
        "aimonitor_sitename",
        [2],
        2,
    )
    assert event.details["fields"] == ["name"]
    assert event.details["before"] == "Second Store (2)"
    assert event.details["objects"] == ["Harbour Store (2)"]


def test_audit_search_finds_a_row_id_and_long_id_lists_fold(client, root):
    """Issue #13, item 6: a row id is searchable; thousands of ids do not fill the page."""
    from aimonitor.models import AuditEvent

    bulk = AuditEvent.objects.record(
        actor=root,
        action="invalidate",
        target_table="ai_cache",
        target_ids=range(1, 3001),
        site_id=1,
    )
    other = AuditEvent.objects.record(
        actor=root, action="retry", target_table="ai_trigger_jobs", target_ids=[5001], site_id=1
    )
    client_for(client, root)
    html = client.get("/admin/aimonitor/auditevent/", {"q": "2999"}).text
    assert f"/admin/aimonitor/auditevent/{bulk.id}/change/" in html
    assert f"/admin/aimonitor/auditevent/{other.id}/change/" not in html
    html = client.get("/admin/aimonitor/auditevent/", {"q": "5001"}).text
    assert f"/admin/aimonitor/auditevent/{other.id}/change/" in html
    assert f"/admin/aimonitor/auditevent/{bulk.id}/change/" not in html

    for url in ("/admin/aimonitor/auditevent/", f"/admin/aimonitor/auditevent/{bulk.id}/change/"):
        html = client.get(url).text
        assert (
            '<details class="id-list"><summary>1, 2, 3, 4, 5, 6, 7, 8, 9, 10 and 2,990 more' in html
        )
    assert "row ids" in client.get("/admin/aimonitor/auditevent/").text.lower()
