"""Every main page on realistic data: no CSP violation, no script error, a screenshot each.

The screenshots land in test-artifacts/screenshots/; docs/screenshots/ keeps the
current ones (copied from there after a run), README.md shows the dashboard.
"""

from __future__ import annotations

import re

import pytest
from django.core.management import call_command
from playwright.sync_api import expect

from aimonitor.models import RunLog, TriggerJob
from tests.e2e.conftest import log_in, quiesce, screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PHONE = {"width": 390, "height": 844}


class ConsoleWatch:
    """Console errors and uncaught exceptions of one page, checked after each visit."""

    def __init__(self, page):
        self.errors: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))

    def check(self, where: str) -> None:
        csp = [e for e in self.errors if "Content Security Policy" in e]
        assert not csp, f"{where}: CSP violations {csp}"
        assert not self.errors, f"{where}: console errors {self.errors}"
        self.errors.clear()


def settle(page) -> None:
    """Wait until the page and its htmx swaps are done, so the picture is final."""
    page.wait_for_load_state("networkidle")


@pytest.fixture
def demo_data(alice):
    # seed_demo scales its tokens to the default budget: the pictures show it in use.
    call_command("seed_demo", runs=20_000, days=30, verbosity=0)


def test_every_main_page_on_demo_data(page, browser, live_server, demo_data):
    watch = ConsoleWatch(page)

    page.goto("/accounts/login/")
    settle(page)
    watch.check("login")
    screenshot(page, "login")

    log_in(page, "alice")
    settle(page)
    expect(page.locator("#panel-trend_7d svg")).to_be_visible()
    watch.check("dashboard")
    screenshot(page, "dashboard")

    page.goto("/runs/")
    settle(page)
    expect(page.locator("#results tbody tr td.num a").first).to_be_visible()
    watch.check("runs")
    screenshot(page, "runs")

    run = RunLog.objects.filter(site_id=1, status="success").latest("created_at")
    page.goto(f"/runs/{run.pk}/")
    settle(page)
    expect(page.locator("#prompt")).to_be_visible()
    watch.check("run detail")
    screenshot(page, "run-detail")

    page.goto("/jobs/")
    settle(page)
    watch.check("jobs")
    screenshot(page, "jobs")

    job = TriggerJob.objects.filter(site_id=1, status="failed").latest("created_at")
    page.goto(f"/jobs/{job.pk}/")
    settle(page)
    expect(page.locator("#payload")).to_be_visible()
    watch.check("job detail")
    screenshot(page, "job-detail")

    page.goto("/cache/")
    settle(page)
    watch.check("cache")
    screenshot(page, "cache")
    page.select_option("#invalidate_site", "1")
    page.fill("#invalidate_cache_type", "app3_clue")
    page.get_by_role("button", name="Preview…").click()
    expect(page.locator("#invalidate-count")).to_be_visible()
    settle(page)
    watch.check("cache confirm")
    screenshot(page, "cache-confirm")

    page.goto("/batch/")
    settle(page)
    watch.check("batch")
    screenshot(page, "batch")
    page.select_option("#id_site", "1")
    page.locator("input[name=app_types]").nth(0).check()
    page.locator("input[name=app_types]").nth(1).check()
    page.fill("#id_member_ids", "\n".join(str(100_000 + n * 37) for n in range(120)))
    page.get_by_role("button", name="Estimate").click()
    expect(page.locator("h1")).to_have_text("Confirm batch run")
    settle(page)
    watch.check("batch confirm")
    screenshot(page, "batch-confirm")

    page.goto("/alerts/")
    settle(page)
    expect(page.locator("#results tbody tr").first).to_be_visible()
    watch.check("alerts")
    screenshot(page, "alerts")

    # The same console on a phone: the dashboard and a list stay readable.
    phone = browser.new_context(base_url=live_server.url, viewport=PHONE, locale="en-US")
    try:
        small = phone.new_page()
        small_watch = ConsoleWatch(small)
        log_in(small, "alice")
        settle(small)
        small_watch.check("dashboard on a phone")
        screenshot(small, "dashboard-phone")
        # Nothing sticks out sideways: the page itself never scrolls horizontally.
        assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        small.goto("/alerts/")
        settle(small)
        small_watch.check("alerts on a phone")
        assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        screenshot(small, "alerts-phone")
        quiesce(small)
    finally:
        phone.close()


def test_screenshots_show_real_figures(page, demo_data):
    """The seeded dashboard is not an empty one (the README picture must say something)."""
    log_in(page, "alice")
    assert int(page.locator('[data-metric="today_calls"]').get_attribute("data-value")) > 0
    expect(page.locator("#panel-app_distribution tbody tr").first).to_be_visible()
    assert re.fullmatch(r"\d+\+?", page.locator("#nav-alert-count").inner_text())
