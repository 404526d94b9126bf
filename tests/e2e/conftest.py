"""Browser tests: Playwright driving Debian's Chromium against a live server.

Playwright cannot download its own browser here, so it launches the system
Chromium at /usr/bin/chromium. Without it the browser tests are skipped — except
under CI=true, where a missing browser fails the run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import PASSWORD

# Playwright's sync API runs an event loop in this thread; Django's ORM calls made
# by the test itself (fixtures, assertions) are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("AIMONITOR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def browser():
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run should have installed it.")
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    context = browser.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, locale="en-US"
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    quiesce(page)
    context.close()
    wait_until_server_idle()


def quiesce(page) -> None:
    """Let htmx requests still on their way finish: the live server must not answer
    after the test's database access has ended."""
    from playwright.sync_api import Error

    with contextlib.suppress(Error):  # a closed page has nothing in flight
        page.wait_for_function("() => !document.querySelector('.htmx-request')", timeout=5_000)


def wait_until_server_idle(timeout: float = 10.0) -> None:
    """Wait until no other connection to the test database is running a statement or
    holding a transaction open.

    Closing the browser stops new requests, but the live server may still be answering
    one (a panel poll summing the rollups). Django's flush after the test TRUNCATEs the
    tables that request reads: started now, the two can deadlock, the flush fails and the
    next test finds the previous test's users. So the flush waits for the server.
    """
    import time

    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                " AND state <> 'idle'"
            )
            if cursor.fetchone()[0] == 0:
                return
        time.sleep(0.05)
    pytest.fail(f"the live server was still busy {timeout:.0f} s after the browser closed")


def log_in(page, username: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/")


def screenshot(page, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/screenshots/ (docs/ keeps copies)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
