"""The triage walk (SPEC.md §8, issue #16): "find the failing app and acknowledge its
timeouts" from the dashboard in three clicks and a confirmation, in English and
Chinese, on a laptop and a phone."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from aimonitor.models import AuditEvent, RunLog
from tests.conftest import make_run
from tests.e2e.conftest import log_in, quiesce, screenshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize("locale", ["en-US", "zh-CN"])
def test_find_the_failing_app_and_acknowledge_its_timeouts(
    browser, live_server, bob, locale, width
):
    now = timezone.now()
    timeouts = [
        make_run(
            site_id=1,
            app_type="app3_clue",
            status="timeout",
            error_message=f"Timeout after {3000 + n} ms (member {n})",
            created_at=now - dt.timedelta(minutes=10 + n),
        )
        for n in range(3)
    ]
    other = make_run(
        site_id=1,
        app_type="app3_clue",
        status="failed",
        error_message="bad response",
        created_at=now - dt.timedelta(minutes=5),
    )
    for n in range(5):
        make_run(site_id=1, app_type="app1_chat", created_at=now - dt.timedelta(minutes=n))

    context = browser.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 900}, locale=locale
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        log_in(page, "bob")
        # The apps table: the failing app first, its failures one click away.
        first_app = page.locator("#panel-range table.apps-table tbody tr").first
        expect(first_app).to_have_attribute("data-app", "app3_clue")
        screenshot(page, f"triage-dashboard-{locale}-{width}")
        first_app.locator("a.app-failures").click()  # click 1
        page.wait_for_url("**/failures/?app_type=app3_clue**")
        group = page.locator('tr.failure-group[data-status="timeout"]')
        expect(group).to_have_count(1)
        expect(group.locator("td.num").first).to_contain_text("3")
        # Its sparkline says each hour's count on hover and keyboard focus: 3 in all.
        slots = group.locator("svg.sparkline rect.spark-slot")
        titles = slots.locator("title").all_text_contents()
        assert len(titles) in (24, 25)
        assert sum(int(re.search(r"[:：]\s*([\d,]+)\D*$", t).group(1)) for t in titles) == 3
        slots.last.focus()
        assert slots.last.evaluate("slot => document.activeElement === slot")
        assert slots.last.evaluate("slot => getComputedStyle(slot).outlineStyle") != "none"
        screenshot(page, f"triage-failures-{locale}-{width}")
        group.locator('button[value="acknowledge"]').click()  # click 2
        # The confirmation says what changes, in words, and shows the first rows.
        expect(page.locator(".bulk-description")).to_contain_text("app3_clue")
        expect(page.locator("table.bulk-preview tbody tr")).to_have_count(3)
        expect(page.locator('[data-metric="bulk_count"]')).to_have_attribute("data-value", "3")
        screenshot(page, f"triage-confirm-{locale}-{width}")
        page.locator("form button.primary").click()  # click 3
        page.wait_for_url("**/alerts/**")
        expect(page.locator(".message.success").first).to_be_visible()
        quiesce(page)
    finally:
        context.close()

    states = dict(RunLog.objects.values_list("pk", "alert_status"))
    assert all(states[run.pk] == "acknowledged" for run in timeouts)
    assert states[other.pk] is None  # another group: untouched
    event = AuditEvent.objects.get(action="acknowledge")
    assert sorted(event.target_ids) == sorted(run.pk for run in timeouts)
