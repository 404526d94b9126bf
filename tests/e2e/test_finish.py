"""The finish of the console in a real browser: keyboard, focus, progress, polling, empty
states, statuses as text."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from aimonitor.models import RunLog
from tests.conftest import make_run
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

PANEL_URL = "/dashboard/panels/"
FOCUSED = """() => {
  const e = document.activeElement, s = getComputedStyle(e);
  return {tag: e.tagName, cls: e.className, text: e.textContent.trim(), inMain: !!e.closest('main'),
          inNav: !!e.closest('.mainnav'), left: e.getBoundingClientRect().left,
          outline: s.outlineStyle, width: s.outlineWidth, colour: s.outlineColor};
}"""


def focused(page) -> dict:
    return page.evaluate(FOCUSED)


def test_keyboard_reaches_skip_link_nav_and_actions(page, bob):
    alert = make_run(site_id=1, status="failed")
    log_in(page, "bob")

    page.keyboard.press("Tab")
    first = focused(page)
    assert (first["cls"], first["text"]) == ("skip-link", "Skip to content")
    assert first["left"] >= 0  # moved on screen while focused
    assert (first["outline"], first["width"]) == ("solid", "3px")
    page.keyboard.press("Enter")
    assert page.url.endswith("#main")
    page.keyboard.press("Tab")
    assert focused(page)["inMain"]

    page.goto("/alerts/")
    for _ in range(3):
        page.keyboard.press("Tab")
        if focused(page)["inNav"]:
            break
    nav = focused(page)
    assert (nav["tag"], nav["text"], nav["outline"]) == ("A", "Dashboard", "solid")
    assert nav["colour"] == "rgb(255, 255, 255)"  # visible on the dark top bar

    # Every action is a real control: htmx requests come from buttons, forms and the
    # polled panels only; no click handlers on other elements, no positive tabindex.
    odd = page.evaluate(
        """() => [...document.querySelectorAll('[hx-post], [hx-get], [onclick], [tabindex]')]
             .filter(e => !['BUTTON', 'FORM', 'A'].includes(e.tagName) && !e.hasAttribute('data-poll'))
             .map(e => e.outerHTML.slice(0, 80))"""
    )
    assert odd == []

    button = page.locator(f"#alert-{alert.pk}").get_by_role("button", name="Acknowledge")
    button.focus()
    page.keyboard.press("Enter")
    expect(page.locator(f"#alert-{alert.pk} .status-acknowledged")).to_be_visible()
    assert RunLog.objects.get(pk=alert.pk).alert_status == "acknowledged"


def test_polling_pauses_while_the_tab_is_hidden(page, alice):
    make_run(site_id=1)
    log_in(page, "alice")
    asked: list[str] = []
    answered: list[str] = []
    page.on("request", lambda r: PANEL_URL in r.url and asked.append(r.url))
    page.on("response", lambda r: PANEL_URL in r.url and answered.append(r.url))

    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
          Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
          document.dispatchEvent(new Event('visibilitychange'));
          htmx.trigger('#panel-today', 'refresh');
        }"""
    )
    page.wait_for_timeout(500)
    assert asked == []  # console.js cancelled the poll

    make_run(site_id=1)
    page.evaluate(
        """() => {
          Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
          Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
          document.dispatchEvent(new Event('visibilitychange'));
        }"""
    )
    # Back in view: every polled panel refreshes at once.
    wait_for(page, lambda: len(answered) >= 8)
    panels = {re.search(r"/panels/([\w-]+)/", url).group(1) for url in asked}
    assert panels == {
        "today",
        "range",
        "trend_7d",
        "app_distribution",
        "app_health",
        "budget",
        "recent_alerts",
        "incidents",
    }
    expect(page.locator('#panel-today [data-metric="today_calls"]')).to_have_text("2")


def hold_requests(page, pattern) -> list:
    """Routes matching `pattern` wait until the test lets them go (route.continue_())."""
    held: list = []

    def hold(route) -> None:
        held.append(route)

    page.route(pattern, hold)
    return held


def wait_for(page, condition, timeout_ms: int = 5000) -> None:
    for _ in range(timeout_ms // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError("timed out")


def test_loading_indicators_show_while_waiting(page, alice):
    make_run(site_id=1, app_type="app1_chat")
    log_in(page, "alice")

    # A refreshing panel dims while its request is on its way.
    held = hold_requests(page, re.compile(r"/dashboard/panels/today/"))
    page.evaluate("htmx.trigger('#panel-today', 'refresh')")
    wait_for(page, lambda: held)
    panel = page.locator("#panel-today")
    expect(panel).to_have_class(re.compile(r"\bhtmx-request\b"))
    page.wait_for_timeout(700)  # the dimming starts after a short delay
    assert float(panel.evaluate("e => getComputedStyle(e).opacity")) < 1
    held[0].continue_()
    expect(page.locator("#panel-today")).not_to_have_class(re.compile(r"\bhtmx-request\b"))

    # A list's filter form shows "Loading…" until its results arrive.
    page.goto("/runs/")
    indicator = page.locator("#results-loading")
    assert indicator.evaluate("e => getComputedStyle(e).opacity") == "0"
    held = hold_requests(page, re.compile(r"/runs/\?"))
    page.fill("#id_app_type", "app1_chat")
    page.get_by_role("button", name="Filter").click()
    wait_for(page, lambda: held)
    expect(indicator).to_have_class(re.compile(r"\bhtmx-request\b"))
    page.wait_for_timeout(300)
    assert indicator.evaluate("e => getComputedStyle(e).opacity") == "1"
    expect(indicator).to_have_text("Loading…")
    held[0].continue_()
    expect(indicator).not_to_have_class(re.compile(r"\bhtmx-request\b"))
    page.wait_for_url(re.compile(r"app_type=app1_chat"))


def test_empty_states_say_what_to_do(page, bob):
    log_in(page, "bob")
    expect(page.locator("#panel-app_distribution .empty")).to_have_text(
        "No calls in the last 7 days."
    )

    page.goto("/runs/")
    expect(page.locator("#results .empty")).to_contain_text("No runs yet")
    page.fill("#id_app_type", "app9_none")
    page.get_by_role("button", name="Filter").click()  # htmx swaps the results
    empty = page.locator("#results .empty")
    expect(empty).to_have_text("No runs match these filters. Widen the dates or reset the filters.")
    empty.get_by_role("link", name="reset the filters").click()
    page.wait_for_url(re.compile(r"/runs/$"))

    page.goto("/jobs/?status=failed")
    expect(page.locator("#results .empty")).to_have_text(
        "No jobs match these filters. Widen the dates or reset the filters."
    )
    page.goto("/cache/?cache_type=app3_clue")
    expect(page.locator("#results .empty")).to_have_text(
        "No cache entries match these filters. Widen the dates or reset the filters."
    )
    page.goto("/alerts/")
    expect(page.locator("#results .empty")).to_contain_text("No pending alerts")
    page.locator("#results .empty").get_by_role("link", name="Show every alert").click()
    page.wait_for_url(re.compile(r"alert_status=all"))
    expect(page.locator("#results .empty")).to_contain_text(
        "No alerts match these filters. Choose another alert status"
    )


def test_status_is_text_as_well_as_colour(page, bob):
    for status in ("success", "failed", "timeout", "circuit_open", "running"):
        make_run(site_id=1, status=status)
    log_in(page, "bob")
    page.goto("/runs/")
    labels = page.locator("#results td .status")
    texts = set(labels.all_inner_texts())
    assert {"success", "failed", "timeout", "circuit_open", "running", "pending"} <= texts

    def background(status: str) -> str:
        return page.locator(f"#results .status-{status}").first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )

    assert len({background(s) for s in ("success", "failed", "running")}) == 3


def test_teardown_waits_until_the_live_server_is_idle(transactional_db):
    """The page fixture's teardown returns only once no request of the live server is
    still inside the database (issue #13, item 8: the flush deadlocked against a poll)."""
    import threading
    import time

    from django.db import connection

    from tests.e2e.conftest import wait_until_server_idle

    def a_slow_request() -> None:
        with connection.cursor() as cursor:  # this thread's own connection
            cursor.execute("SELECT pg_sleep(0.8)")
        connection.close()

    request = threading.Thread(target=a_slow_request)
    request.start()
    time.sleep(0.2)
    started = time.monotonic()
    wait_until_server_idle()
    waited = time.monotonic() - started
    request.join()
    assert waited >= 0.4
