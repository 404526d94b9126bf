"""The alerts list and the navigation's count refresh by polling (issue #13, item 7):
a "N new" notice instead of rows moving under the cursor."""

from __future__ import annotations

import re
from html import unescape

from tests.conftest import client_for, make_run


def poll_url(html: str, element_id: str) -> str:
    match = re.search(rf'<[^>]*id="{element_id}"[^>]*>', html)
    assert match, f"no #{element_id}"
    tag = match.group(0)
    assert 'hx-trigger="every 30s, refresh"' in tag and "data-poll" in tag
    return unescape(re.search(r'hx-get="([^"]*)"', tag).group(1))


def test_the_alerts_list_polls_for_newer_alerts_and_says_how_many(client, bob):
    make_run(site_id=1, status="failed")
    newest = make_run(site_id=1, status="timeout", app_type="app3_clue")
    client_for(client, bob)
    html = client.get("/alerts/", {"app_type": "app3_clue"}).text
    url = poll_url(html, "alerts-new")
    assert url == f"/alerts/new/?app_type=app3_clue&since={newest.id}"

    answer = client.get(url)
    assert answer.status_code == 200
    assert ">1 new alert" not in answer.text and 'id="alerts-new"' in answer.text

    make_run(site_id=1, status="timeout", app_type="app3_clue")
    make_run(site_id=1, status="timeout", app_type="app3_clue")
    make_run(site_id=1, status="failed", app_type="app1_chat")  # another filter's
    make_run(site_id=2, status="failed", app_type="app3_clue")  # another site's
    answer = client.get(url).text
    assert "2 new alerts: show them" in answer
    assert 'href="?app_type=app3_clue"' in answer
    # The navigation's count comes along (5 pending alerts of site 1).
    assert re.search(r'id="nav-alert-count"[^>]*>5</span>', answer)


def test_every_page_polls_the_navigation_count(client, bob):
    html = client_for(client, bob).get("/runs/").text
    assert poll_url(html, "nav-alert-count") == "/alerts/new/"
    make_run(site_id=1, status="failed")
    answer = client.get("/alerts/new/").text
    assert re.search(r'id="nav-alert-count"[^>]*>1</span>', answer)


def test_new_alerts_refuses_bad_input_and_other_sites(client, bob):
    client_for(client, bob)
    assert client.get("/alerts/new/", {"since": "abc"}).status_code == 400
    assert client.get("/alerts/new/", {"date_from": "2026-02-30", "since": "1"}).status_code == 400
    assert client.get("/alerts/new/", {"site": "2", "since": "1"}).status_code == 403
    assert client.post("/alerts/new/").status_code == 405
    client.logout()
    assert client.get("/alerts/new/").status_code == 302
