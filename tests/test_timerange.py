"""The one time range (SPEC.md §8): presets, custom windows, refusals naming the field,
and the choice kept in the URL across the site picker and the navigation."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from aimonitor.timerange import TimeRange, parse_local
from tests.conftest import client_for, make_run

PAGES = ("/", "/dashboard.json", "/runs/", "/alerts/", "/failures/")


def local(text: str) -> dt.datetime:
    return parse_local(text)


def test_a_local_time_is_read_in_the_console_zone(settings):
    moment = local("2026-11-28T14:00")
    assert moment.utcoffset() == dt.timedelta(hours=8)  # Asia/Shanghai
    assert parse_local("2026-11-28 14:00") is None
    assert parse_local("2026-13-01T00:00") is None
    assert parse_local("1900-01-01T00:00") is None


def test_presets_end_now():
    now = timezone.now()
    window = TimeRange.last("6h", now)
    assert (window.since, window.until) == (now - dt.timedelta(hours=6), now)
    assert window.params() == {"range": "6h"}


@pytest.mark.parametrize("path", PAGES)
@pytest.mark.parametrize(
    "query, field",
    [
        ("range=2h", "range"),
        ("range=1h&since=2026-11-01T00:00", "range"),
        ("since=yesterday", "since"),
        ("since=2026-11-01T00:00&until=2026-11-01T00:00", "since"),
        ("since=2026-10-01T00:00&until=2026-11-02T00:01", "until"),
        ("until=2026-11-01T00:00", "since"),
        ("until=2026-11-01T25:00&since=2026-11-01T00:00", "until"),
    ],
)
def test_a_bad_range_is_a_400_naming_the_field(client, alice, path, query, field):
    response = client_for(client, alice).get(f"{path}?{query}")
    assert response.status_code == 400
    if path.endswith(".json"):
        assert field in response.json()["errors"]
    else:
        assert f"{field}:" in response.content.decode().lower()


def test_runs_are_narrowed_to_the_range_and_until_is_exclusive(client, alice):
    inside = make_run(created_at=local("2026-11-20T10:00"), member_id=7001)
    at_until = make_run(created_at=local("2026-11-20T12:00"), member_id=7002)
    before = make_run(created_at=local("2026-11-20T09:59"), member_id=7003)
    response = client_for(client, alice).get("/runs/?since=2026-11-20T10:00&until=2026-11-20T12:00")
    assert response.status_code == 200
    ids = [run.pk for run in response.context["page"].object_list]
    assert ids == [inside.pk]
    assert at_until.pk not in ids and before.pk not in ids


def test_a_preset_narrows_runs_and_alerts(client, alice):
    recent = make_run(status="failed", created_at=timezone.now() - dt.timedelta(minutes=5))
    old = make_run(status="failed", created_at=timezone.now() - dt.timedelta(hours=2))
    client = client_for(client, alice)
    for path in ("/runs/?range=1h", "/alerts/?range=1h"):
        ids = [r.pk for r in client.get(path).context["page"].object_list]
        assert recent.pk in ids and old.pk not in ids, path
    # Without a range the lists show every day, and date filters keep working.
    ids = [r.pk for r in client.get("/runs/").context["page"].object_list]
    assert old.pk in ids


def test_the_range_is_kept_by_the_site_picker_the_filters_and_the_nav(client, alice):
    make_run()
    page = client_for(client, alice).get("/runs/?range=7d&status=success&site=1").content.decode()
    # Site picker: every other filter as hidden inputs.
    picker = page.split('class="site-picker"')[1].split("</form>")[0]
    assert 'name="range" value="7d"' in picker and 'name="status" value="success"' in picker
    # The filter form carries the range, the nav links carry range and site.
    assert '<input type="hidden" name="range" value="7d"' in page
    for path in ("/", "/failures/", "/runs/", "/alerts/"):
        assert f'href="{path}?range=7d&amp;site=1"' in page
    # The presets keep the other filters and replace the window.
    assert 'href="?range=24h&amp;status=success&amp;site=1"' in page


def test_the_control_marks_the_chosen_preset(client, alice):
    page = client_for(client, alice).get("/").content.decode()
    assert 'data-range="24h" aria-current="true"' in page  # the dashboard's default
    page = client.get("/alerts/?range=6h").content.decode()
    assert 'data-range="6h" aria-current="true"' in page
