"""What a person does in the browser, end to end: each test walks one task.

Live server + the system Chromium (tests/e2e/conftest.py). Rows come from the
factories of tests/conftest.py; each test's outcome is checked both on the page and
in the database.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from aimonitor.models import CacheEntry, RunLog, TriggerJob
from tests.conftest import make_cache, make_job, make_run
from tests.e2e.conftest import log_in

pytestmark = pytest.mark.django_db(transaction=True)

PANEL_URL = "/dashboard/panels/"


def metric(page, name: str) -> str:
    """The raw value of a figure (its data-value attribute)."""
    return page.locator(f'[data-metric="{name}"]').first.get_attribute("data-value")


def mark_window(page) -> None:
    """A marker that only survives as long as no navigation or reload happens."""
    page.evaluate("window.__e2eMarker = 'still here'")


def assert_no_navigation(page) -> None:
    assert page.evaluate("window.__e2eMarker") == "still here"


def test_dashboard_figures_refresh_by_themselves(page, alice):
    for _ in range(3):
        make_run(site_id=1)
    log_in(page, "alice")

    expect(page.locator("h1")).to_have_text("Dashboard")
    assert metric(page, "today_calls") == "3"
    assert page.locator('#panel-today [data-metric="today_calls"]').inner_text() == "3"
    # Every panel polls its own fragment and also answers the `refresh` event.
    polled = page.locator("main [data-poll]")  # the panels (the nav count polls too)
    assert polled.count() == 8  # with the range and incidents panels (SPEC.md §8, §10)
    for index in range(polled.count()):
        assert polled.nth(index).get_attribute("hx-trigger") == "every 30s, refresh"

    mark_window(page)
    make_run(site_id=2, status="failed")
    with page.expect_response(lambda r: f"{PANEL_URL}today/" in r.url) as answer:
        page.evaluate("htmx.trigger('#panel-today', 'refresh')")
    assert answer.value.status == 200
    expect(page.locator('#panel-today [data-metric="today_calls"]')).to_have_text("4")
    assert metric(page, "today_success_rate") == "0.75"
    assert_no_navigation(page)


def test_site_switch_moves_every_panel(page, alice):
    for _ in range(3):
        make_run(site_id=1, tokens_used=100)
    make_run(site_id=2, tokens_used=1000)
    log_in(page, "alice")
    assert metric(page, "today_calls") == "4"
    assert metric(page, "today_tokens") == "1300"

    page.select_option("#site-picker", "2")  # submits by itself (console.js)
    page.wait_for_url(re.compile(r"/\?site=2$"))
    expect(page.locator("#site-picker")).to_have_value("2")
    assert metric(page, "today_calls") == "1"
    assert metric(page, "today_tokens") == "1000"
    polled = page.locator("main [data-poll]")  # the panels (the nav count polls too)
    for index in range(polled.count()):
        assert polled.nth(index).get_attribute("hx-get").endswith("?site=2")

    # A refreshed panel stays on the chosen site.
    make_run(site_id=1)
    make_run(site_id=2)
    with page.expect_response(lambda r: f"{PANEL_URL}today/" in r.url) as answer:
        page.evaluate("htmx.trigger('#panel-today', 'refresh')")
    assert answer.value.url.endswith("?site=2")
    expect(page.locator('#panel-today [data-metric="today_calls"]')).to_have_text("2")

    page.select_option("#site-picker", "")
    page.wait_for_url(re.compile(r"/\?site=$"))
    assert metric(page, "today_calls") == "6"


def test_acknowledge_alert_inline(page, bob):
    first = make_run(site_id=1, status="failed", error_message="upstream returned 500")
    make_run(site_id=1, status="timeout")
    log_in(page, "bob")
    page.goto("/alerts/")
    expect(page.locator("#nav-alert-count")).to_have_text("2")
    mark_window(page)

    row = page.locator(f"#alert-{first.pk}")
    row.get_by_role("button", name="Acknowledge").click()
    expect(row.locator(".status-acknowledged")).to_have_text("acknowledged")
    expect(row.locator(".handled-by")).to_contain_text("acknowledged by bob")
    expect(row.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(row.get_by_role("button", name="Reopen")).to_be_visible()
    expect(page.locator("#nav-alert-count")).to_have_text("1")
    assert_no_navigation(page)
    first.refresh_from_db()
    assert first.alert_status == "acknowledged"

    row.get_by_role("button", name="Reopen").click()
    expect(page.locator("#nav-alert-count")).to_have_text("2")
    assert_no_navigation(page)
    first.refresh_from_db()
    assert first.alert_status == "pending"


def test_retry_job_from_its_page(page, bob):
    job = make_job(site_id=1, status="failed", error_message="app3_clue timed out")
    log_in(page, "bob")
    page.goto("/jobs/?status=failed")
    page.get_by_role("link", name=f"#{job.pk}", exact=True).click()
    page.wait_for_url(re.compile(rf"/jobs/{job.pk}/\?back=list&status=failed$"))

    page.get_by_role("button", name="Retry this job").click()
    new = TriggerJob.objects.exclude(pk=job.pk).get()
    # Back to the list it came from, with its filters (SPEC.md §9).
    page.wait_for_url(re.compile(r"/jobs/\?status=failed$"))
    expect(page.locator(".messages")).to_contain_text(f"Retried as job #{new.pk}.")
    expect(page.get_by_role("link", name=f"retried as #{new.pk}")).to_be_visible()
    assert (new.status, new.is_forced, new.member_id) == ("pending", True, job.member_id)

    page.goto(f"/jobs/{new.pk}/")
    expect(page.locator("h1")).to_contain_text("pending")
    expect(page.locator("#history")).to_contain_text(f"Retry of #{job.pk}")
    # Retried once: the original's page asks for the explicit tick before another copy.
    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("#retried-as")).to_contain_text(f"retried as #{new.pk}")
    page.get_by_role("button", name="Retry this job").click()
    expect(page.locator(".errorlist")).to_contain_text(f"was already retried as #{new.pk}")
    assert TriggerJob.objects.count() == 2


def test_invalidate_cache_in_two_steps(page, bob):
    clues = [make_cache(site_id=1, cache_type="app3_clue") for _ in range(3)]
    other_type = make_cache(site_id=1, cache_type="app2_summary")
    log_in(page, "bob")
    page.goto("/cache/")

    page.select_option("#invalidate_site", "1")
    page.fill("#invalidate_cache_type", "app3_clue")
    page.get_by_role("button", name="Preview…").click()
    expect(page.locator("h1")).to_have_text("Invalidate cached results")
    expect(page.locator("#invalidate-count")).to_have_attribute("data-value", "3")
    assert all(e.status == "valid" for e in CacheEntry.objects.all())  # nothing changed yet

    page.get_by_role("button", name="Yes, invalidate them").click()
    page.wait_for_url("**/cache/?site=1&cache_type=app3_clue")
    expect(page.locator(".messages")).to_contain_text("Invalidated 3 cache entries.")
    expect(page.locator("#results .status-invalidated")).to_have_count(3)
    for entry in clues:
        entry.refresh_from_db()
        assert entry.status == "invalidated"
    other_type.refresh_from_db()
    assert other_type.status == "valid"


def test_batch_run_through_estimate_and_confirmation(page, alice):
    # Tokens per call are each app's mean of the last 7 days (SPEC.md §8): 2,000 here.
    make_run(site_id=1, app_type="app1_chat", tokens_used=2000)
    make_run(site_id=1, app_type="app3_clue", tokens_used=2000)
    log_in(page, "alice")
    page.goto("/batch/")

    page.select_option("#id_site", "1")
    page.get_by_label("app1_chat").check()
    page.get_by_label("app3_clue").check()
    page.fill("#id_member_ids", "501, 502\n503 502")
    page.get_by_role("button", name="Estimate").click()

    expect(page.locator("h1")).to_have_text("Confirm batch run")
    expect(page.locator('[data-metric="members"]')).to_have_attribute("data-value", "3")
    expect(page.locator('[data-metric="calls"]')).to_have_attribute("data-value", "6")
    expect(page.locator('[data-metric="tokens"]')).to_have_attribute("data-value", "12000")
    assert not TriggerJob.objects.exists()

    page.get_by_role("button", name="Confirm and create 3 jobs").click()
    page.wait_for_url(re.compile(r"/jobs/\?batch="))
    expect(page.locator(".messages")).to_contain_text("Batch confirmed: 3 jobs created.")
    jobs = TriggerJob.objects.order_by("member_id")
    assert [j.member_id for j in jobs] == [501, 502, 503]
    assert {(j.event_type, j.app_chain, j.status) for j in jobs} == {
        ("admin_batch", "app1_chat,app3_clue", "pending")
    }
    for job in jobs:
        expect(page.get_by_role("link", name=f"#{job.pk}", exact=True)).to_be_visible()


def test_viewer_sees_no_buttons_they_cannot_use(page, charlie):
    alert = make_run(site_id=2, status="failed")
    job = make_job(site_id=2, status="failed")
    make_cache(site_id=2)
    log_in(page, "charlie")

    page.goto("/alerts/")
    expect(page.locator(f"#alert-{alert.pk}")).to_be_visible()
    for name in ("Acknowledge", "Ignore", "Reopen", "Acknowledge…", "Ignore…"):
        expect(page.get_by_role("button", name=name, exact=True)).to_have_count(0)
    expect(page.locator("#bulk-form")).to_have_count(0)

    page.goto(f"/jobs/{job.pk}/")
    expect(page.get_by_role("button", name="Retry this job")).to_have_count(0)
    page.goto("/jobs/")
    expect(page.get_by_role("button", name=re.compile("^Retry"))).to_have_count(0)

    page.goto("/cache/")
    expect(page.locator("#invalidate")).to_have_count(0)
    expect(page.get_by_role("button", name="Preview…")).to_have_count(0)

    page.goto("/batch/")
    expect(page.locator(".batch-form")).to_have_count(0)
    expect(page.get_by_role("button", name="Estimate")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("Only admins may launch batch runs.")

    page.goto(f"/runs/{alert.pk}/")
    expect(page.locator("#prompt")).to_have_count(0)
    expect(page.locator("main")).to_contain_text("your role may not read it")
    assert RunLog.objects.get(pk=alert.pk).alert_status is None


def test_log_out(page, bob):
    log_in(page, "bob")
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url("**/accounts/login/")
    expect(page.locator("#id_username")).to_be_visible()
    page.goto("/runs/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/runs/"))


def test_an_operator_acknowledges_an_incident(page, bob):
    """An incident found by a rule is on the dashboard and /incidents/; acknowledging it
    there stops its reminders (and says so)."""
    from alerts.models import AlertRule, Incident

    rule = AlertRule.objects.create(
        name="Chat failing", kind="failure_rate", site_id=1, app_type="app1_chat", threshold=0.5
    )
    incident = Incident.objects.create(
        rule=rule,
        key="site=1;app=app1_chat",
        site_id=1,
        app_type="app1_chat",
        last_value=0.8,
        threshold=0.5,
        window_minutes=15,
    )
    log_in(page, "bob")
    expect(page.locator("#panel-incidents")).to_contain_text("Chat failing")
    page.click("text=All incidents")
    row = page.locator(f"#incident-{incident.pk}")
    expect(row).to_contain_text("open")
    row.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Incident #{incident.pk} acknowledged: no more reminders."
    )
    expect(page.locator(f"#incident-{incident.pk}")).to_contain_text("acknowledged by bob")
    incident.refresh_from_db()
    assert incident.acknowledged_by == bob
