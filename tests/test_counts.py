"""One capped count everywhere (issue #13, item 4): the navigation badge, the list pages
and the Django admin's change lists say the same figure the same way, "10,000+"."""

from __future__ import annotations

import re

import pytest
from django.db import connection

from aimonitor.listing import COUNT_CAP, capped_text
from aimonitor.models import RunLog
from tests.conftest import client_for


def add_pending_alerts(count: int, site_id: int = 1) -> None:
    """``count`` pending timeouts at ``site_id``, generated in the database."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""INSERT INTO "{RunLog._meta.db_table}" (site_id, app_type, trigger_type, member_id,
                    status, error_message, created_at)
                SELECT %s, 'app1_chat', 'event', 500000 + n, 'timeout', 'model call exceeded 30 s',
                       now() - make_interval(secs => n)
                FROM generate_series(1, %s) n""",
            [site_id, count],
        )


def badge(html: str) -> str:
    return re.search(r'<span id="nav-alert-count"[^>]*>([^<]*)</span>', html).group(1)


def test_capped_text_reads_the_same_in_every_place():
    assert COUNT_CAP == 10_000
    assert capped_text(999) == "999"
    assert capped_text(1_000) == "1,000"
    assert capped_text(COUNT_CAP) == "10,000"
    assert capped_text(COUNT_CAP + 1) == "10,000+"


@pytest.mark.parametrize(
    "rows,shown", [(1_000, "1,000"), (COUNT_CAP, "10,000"), (COUNT_CAP + 1, "10,000+")]
)
def test_badge_and_alerts_list_agree(client, bob, rows, shown):
    add_pending_alerts(rows)
    html = client_for(client, bob).get("/alerts/").text
    assert badge(html) == shown
    assert re.search(rf"1–25 of {re.escape(shown)}\s*<", html)


def test_chinese_pages_say_the_capped_count_the_same_way(client, bob):
    add_pending_alerts(COUNT_CAP + 1)
    client.cookies["django_language"] = "zh-hans"
    html = client_for(client, bob).get("/alerts/").text
    assert badge(html) == "10,000+"
    assert "10,000+" in html.split('id="results"')[1]


def test_admin_change_list_says_ten_thousand_plus_not_10001(client, alice):
    add_pending_alerts(COUNT_CAP + 5)
    html = client_for(client, alice).get("/admin/aimonitor/runlog/").text
    assert not re.search(r"\b10,?001\b", html)
    assert re.search(r"10,000\+\s+run logs", html)
    assert "Select all 10,000+ run logs" in html
    assert "All 10,000+ selected" in html
    searched = client.get("/admin/aimonitor/runlog/", {"q": "exceeded"}).text
    assert "10,000+ results" in searched and not re.search(r"\b10,?001\b", searched)


def test_admin_change_list_below_the_cap_is_exact(client, alice):
    add_pending_alerts(42)
    html = client_for(client, alice).get("/admin/aimonitor/runlog/").text
    assert re.search(r"\b42\s+run logs", html)
