"""The lists' filters offer known values (SPEC.md §8): sites by name, the event types
and cache types of the user's own sites."""

from __future__ import annotations

import re

import pytest

from aimonitor.models import SiteName
from tests.conftest import client_for, make_cache, make_job, make_run


def datalist(page: str, name: str) -> list[str]:
    found = re.search(rf'<datalist id="id_{name}-suggestions">(.*?)</datalist>', page, re.S)
    return re.findall(r'<option value="([^"]*)">', found.group(1)) if found else []


def site_select(page: str) -> list[tuple[str, str]]:
    found = re.search(r'<select name="site"[^>]*>(.*?)</select>', page, re.S)
    assert found, "no site select"
    return re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', found.group(1))


@pytest.mark.parametrize("url", ["/runs/", "/jobs/", "/cache/", "/alerts/", "/failures/"])
def test_sites_are_chosen_by_name(client, bob, url):
    SiteName.objects.create(site_id=1, name="Jing'an Flagship")
    SiteName.objects.create(site_id=3, name="West Lake")
    page = client_for(client, bob).get(url).content.decode()
    options = site_select(page)
    assert options[1:] == [("1", "Jing&#x27;an Flagship")]  # only bob's site
    assert options[0][0] == ""
    # The value stays the site id: the choice is kept when the page is drawn again.
    page = client.get(f"{url}?site=1").content.decode()
    assert re.search(r'<option value="1" selected>', page)


def test_event_and_cache_types_come_from_the_users_sites(client, bob, alice):
    make_job(site_id=1, event_type="recharge")
    make_job(site_id=1, event_type="consumption")
    make_job(site_id=2, event_type="secret_event")
    make_cache(site_id=1, cache_type="app3_clue")
    make_cache(site_id=2, cache_type="secret_cache")
    client_for(client, bob)
    assert datalist(client.get("/jobs/").content.decode(), "event_type") == [
        "consumption",
        "recharge",
    ]
    assert datalist(client.get("/cache/").content.decode(), "cache_type") == ["app3_clue"]
    client_for(client, alice)
    assert "secret_event" in datalist(client.get("/jobs/").content.decode(), "event_type")
    assert "secret_cache" in datalist(client.get("/cache/").content.decode(), "cache_type")


def test_a_typed_site_outside_the_scope_is_still_refused(client, bob):
    make_run(site_id=2)
    assert client_for(client, bob).get("/runs/?site=2").status_code == 403
