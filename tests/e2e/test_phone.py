"""Every page at phone width (390×844) and at 1280, in English and Chinese, with a long
store name (issue #13, item 2): nothing wider than the screen, the key columns of the
lists (time, app, status, error) on screen without scrolling sideways, the filters
folded behind one button on a phone, and the 7-day chart showing today."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from aimonitor.models import CacheEntry, RunLog, SiteName, TriggerJob
from tests.e2e.conftest import log_in, quiesce, screenshot, wait_until_server_idle

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LONG_NAME = "静安旗舰店 Jing'an Flagship Store of the Greater Shanghai Region"
# The list pages and the cells a person must see first on each row.
KEY_CELLS = {
    "/runs/": ("time", "app", "status", "error"),
    "/jobs/": ("time", "app", "status", "error"),
    "/cache/": ("time", "app", "status"),
    "/alerts/": ("time", "app", "status", "error"),
}


@pytest.fixture
def story(alice):
    call_command("seed_demo", runs=3_000, days=8, sites=3, verbosity=0)
    SiteName.objects.update_or_create(site_id=1, defaults={"name": LONG_NAME})


def pages() -> list[str]:
    run = RunLog.objects.filter(site_id=1).exclude(error_message=None).latest("id")
    job = TriggerJob.objects.filter(site_id=1).latest("id")
    assert CacheEntry.objects.exists()
    return [
        "/",
        "/runs/",
        f"/runs/{run.pk}/",
        "/jobs/",
        f"/jobs/{job.pk}/",
        "/cache/",
        "/batch/",
        "/alerts/",
        "/alerts/?alert_status=all",
        "/runs/?site=1",
    ]


def width_problems(small, viewport: dict) -> list[str]:
    """What sticks out of the screen: the page itself and the key cells of list rows."""
    problems = []
    scroll_width = small.evaluate("document.documentElement.scrollWidth")
    if scroll_width > viewport["width"]:
        # Name the widest culprits, so a failure says where to look.
        culprits = small.evaluate(
            """(width) => [...document.querySelectorAll('body *')]
              .filter(e => e.getBoundingClientRect().right > width + 0.5)
              .map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                   + (e.className && typeof e.className === 'string'
                      ? '.' + e.className.trim().split(/\\s+/).join('.') : ''))
              .slice(-3)""",
            viewport["width"],
        )
        problems.append(f"page is {scroll_width} px wide: {', '.join(culprits)}")
    return problems


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["phone", "desktop"])
@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_no_page_is_wider_than_the_screen(browser, live_server, story, viewport, language):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-US")
    context.add_cookies([{"name": "django_language", "value": language, "url": live_server.url}])
    context.set_default_timeout(10_000)
    try:
        small = context.new_page()
        log_in(small, "alice")
        problems = {}
        for path in pages():
            small.goto(path)
            small.wait_for_load_state("networkidle")
            found = width_problems(small, viewport)
            for cell in KEY_CELLS.get(path, ()):
                boxes = small.locator(f"#results tbody tr td[data-key={cell}]")
                count = boxes.count()
                if not count:
                    found.append(f"no {cell} cells")
                for n in range(min(count, 5)):
                    box = boxes.nth(n).bounding_box()
                    if box and box["x"] + box["width"] > viewport["width"] + 0.5:
                        found.append(
                            f"{cell} cell of row {n} ends at {box['x'] + box['width']:.0f}"
                        )
                        break
            if found:
                problems[path] = found
        assert problems == {}
        quiesce(small)
    finally:
        context.close()
        wait_until_server_idle()


def test_phone_folds_the_filters_and_the_chart_shows_today(browser, live_server, story):
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, locale="en-US")
    context.set_default_timeout(10_000)
    try:
        small = context.new_page()
        log_in(small, "alice")
        # The 7-day chart fits: its last bar (today) is on screen.
        last_bar = small.locator("#panel-trend_7d .chart-bar").last
        box = last_bar.bounding_box()
        screenshot(small, "dashboard-phone-story")
        assert box["x"] + box["width"] <= PHONE["width"]
        small.goto("/runs/")
        fold = small.locator("details.filter-fold")
        expect(fold.locator("summary")).to_be_visible()
        expect(small.locator("#id_date_from")).to_be_hidden()
        # The first row is on the first screen, not below the form.
        assert small.locator("#results tbody tr").first.bounding_box()["y"] < PHONE["height"]
        screenshot(small, "runs-phone")
        fold.locator("summary").click()
        expect(small.locator("#id_date_from")).to_be_visible()
        # A filter chosen stays visible as a count on the button.
        small.goto("/runs/?status=timeout")
        expect(fold.locator("summary")).to_contain_text("1")
        quiesce(small)
    finally:
        context.close()
        wait_until_server_idle()


def test_desktop_shows_the_filters_open(page, story):
    log_in(page, "alice")
    page.goto("/runs/")
    expect(page.locator("#id_date_from")).to_be_visible()
    expect(page.locator("details.filter-fold summary")).to_be_hidden()


def test_dark_mode_follows_the_system(browser, live_server, alice):
    """prefers-color-scheme: dark gives dark pages (the Django admin already does)."""
    colours = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(base_url=live_server.url, color_scheme=scheme)
        try:
            page = context.new_page()
            log_in(page, "alice")
            page.goto("/runs/")
            colours[scheme] = page.evaluate(
                """() => [document.body, document.querySelector('.card')].map(
                     e => getComputedStyle(e).backgroundColor)"""
            )
            quiesce(page)
        finally:
            context.close()
            wait_until_server_idle()

    def brightness(rgb: str) -> float:
        red, green, blue = (int(v) for v in rgb[rgb.index("(") + 1 : -1].split(",")[:3])
        return (red + green + blue) / 3

    assert all(brightness(c) > 200 for c in colours["light"])
    assert all(brightness(c) < 60 for c in colours["dark"])


def test_new_alerts_show_as_a_notice_not_as_moving_rows(page, bob):
    from tests.conftest import make_run

    first = make_run(site_id=1, status="failed")
    log_in(page, "bob")
    page.goto("/alerts/")
    expect(page.locator("#results tbody tr")).to_have_count(1)
    make_run(site_id=1, status="timeout")
    page.evaluate("() => htmx.trigger('#alerts-new', 'refresh')")
    expect(page.locator("#alerts-new")).to_have_text("1 new alert: show it")
    expect(page.locator("#nav-alert-count")).to_have_text("2")
    expect(page.locator("#results tbody tr")).to_have_count(1)  # nothing moved
    expect(page.locator(f"#alert-{first.pk}")).to_be_visible()
    page.locator("#alerts-new a").click()
    expect(page.locator("#results tbody tr")).to_have_count(2)
