"""Run logs: /runs/ (filters, paging, CSV, HTMX) and /runs/<id>/ (detail, prompt privacy)."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aimonitor.localtime import local_day_bounds
from aimonitor.models import RunLog
from tests.conftest import client_for, make_run

TABLE = f'"{RunLog._meta.db_table}"'


def sql_ids(where: str = "TRUE", params=()) -> list[int]:
    """The ids a direct SQL query selects, newest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {TABLE} WHERE {where} ORDER BY created_at DESC, id DESC", params
        )
        return [row[0] for row in cursor.fetchall()]


def page_ids(response) -> list[int]:
    return [run.pk for run in response.context["page"].object_list]


def csv_rows(response) -> list[dict]:
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


@pytest.fixture
def runs(db):
    """A mix of calls over two local days, three sites and several apps and statuses."""
    today = timezone.localdate()
    start, _end = local_day_bounds(today)
    yesterday_late = start - dt.timedelta(seconds=1)  # 23:59:59 the day before, local
    rows = [
        make_run(site_id=1, app_type="app1_chat", status="success", member_id=11),
        make_run(site_id=1, app_type="app3_clue", status="failed", member_id=11),
        make_run(site_id=1, app_type="app3_clue", status="timeout", trigger_type="schedule"),
        make_run(site_id=1, app_type="app1_chat", status="success", created_at=yesterday_late),
        make_run(site_id=2, app_type="app1_chat", status="circuit_open", member_id=11),
        make_run(site_id=2, app_type="app2_summary", status="running", trigger_type="manual"),
        make_run(site_id=3, app_type="app1_chat", status="success", member_id=11),
    ]
    return {"today": today, "yesterday": today - dt.timedelta(days=1), "rows": rows}


def test_login_required(client):
    response = client.get("/runs/")
    assert response.status_code == 302
    assert response.url.startswith("/accounts/login/")


def test_list_is_scoped_and_newest_first(client, alice, runs):
    response = client_for(client, alice).get("/runs/")
    assert response.status_code == 200
    assert page_ids(response) == sql_ids("site_id IN (1, 2)")
    assert response.context["page"].count == 6


@pytest.mark.parametrize(
    "params,where,sql_params",
    [
        ({"app_type": "app3_clue"}, "app_type = %s", ["app3_clue"]),
        ({"status": "success"}, "status = %s", ["success"]),
        ({"status": "running"}, "status = %s", ["running"]),
        ({"trigger_type": "schedule"}, "trigger_type = %s", ["schedule"]),
        ({"member_id": "11"}, "member_id = %s", [11]),
        ({"site": "2"}, "site_id = %s", [2]),
        (
            {"site": "1", "app_type": "app1_chat"},
            "site_id = %s AND app_type = %s",
            [1, "app1_chat"],
        ),
    ],
)
def test_filters_select_the_same_rows_as_sql(client, alice, runs, params, where, sql_params):
    response = client_for(client, alice).get("/runs/", params)
    expected = sql_ids(f"site_id IN (1, 2) AND {where}", sql_params)
    assert response.status_code == 200
    assert page_ids(response) == expected
    assert response.context["page"].count == len(expected)


def test_dates_are_local_days_both_inclusive(client, alice, runs):
    client_for(client, alice)
    yesterday = runs["yesterday"].isoformat()
    start, end = local_day_bounds(runs["yesterday"])
    response = client.get("/runs/", {"date_from": yesterday, "date_to": yesterday})
    expected = sql_ids("site_id IN (1, 2) AND created_at >= %s AND created_at < %s", [start, end])
    assert page_ids(response) == expected
    assert len(expected) == 1  # the call at 23:59:59 local, yesterday
    today = runs["today"].isoformat()
    response = client.get("/runs/", {"date_from": today})
    assert response.context["page"].count == 5


def test_page_size_and_paging(client, alice, db):
    for _ in range(30):
        make_run(site_id=1)
    client_for(client, alice)
    first = client.get("/runs/")
    assert len(page_ids(first)) == 25
    second = client.get("/runs/", {"page": 2})
    assert len(page_ids(second)) == 5
    assert not set(page_ids(first)) & set(page_ids(second))
    assert len(page_ids(client.get("/runs/", {"page_size": 50}))) == 30


def test_csv_is_exactly_the_filtered_rows_without_texts(client, alice, runs):
    make_run(
        site_id=1, app_type="app3_clue", request_prompt="SECRET PROMPT", response_text="SECRET"
    )
    response = client_for(client, alice).get("/runs/", {"app_type": "app3_clue", "format": "csv"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = csv_rows(response)
    assert [int(row["id"]) for row in rows] == sql_ids(
        "site_id IN (1, 2) AND app_type = %s", ["app3_clue"]
    )
    assert "request_prompt" not in rows[0] and "response_text" not in rows[0]
    body = b"".join(client.get("/runs/", {"format": "csv"}).streaming_content).decode()
    assert "SECRET" not in body and "the prompt" not in body


def test_htmx_gets_the_results_fragment(client, alice, runs):
    response = client_for(client, alice).get("/runs/", {"status": "failed"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert "<html" not in response.text
    assert 'id="export-csv"' in response.text and "hx-swap-oob" in response.text
    assert "HX-Request" in response["Vary"]
    assert page_ids(response) == sql_ids("site_id IN (1, 2) AND status = 'failed'")
    # A history restore wants the whole page.
    restore = client.get("/runs/", HTTP_HX_REQUEST="true", HTTP_HX_HISTORY_RESTORE_REQUEST="true")
    assert "<html" in restore.text


@pytest.mark.parametrize(
    "params",
    [
        {"member_id": "abc"},
        {"member_id": "99999999999999999999"},
        {"status": "fa iled"},
        {"status": "x" * 33},
        {"app_type": "a" * 65},
        {"trigger_type": "<script>"},
        {"date_from": "2026-13-45"},
        {"date_from": "2026-11-28", "date_to": "2026-11-01"},
        {"site": "-1"},
        {"site": "abc"},
        {"page_size": "30"},
        {"page": "0"},
    ],
)
def test_bad_filter_values_are_400_with_the_error(client, alice, runs, params):
    response = client_for(client, alice).get("/runs/", params)
    assert response.status_code == 400
    assert 'class="errorlist' in response.text
    fragment = client.get("/runs/", params, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 400
    assert "Please correct these filters" in fragment.text


def test_other_site_filter_is_403(client, bob, runs):
    assert client_for(client, bob).get("/runs/", {"site": 2}).status_code == 403
    assert client.get("/runs/", {"site": 2, "format": "csv"}).status_code == 403


def test_list_is_read_only(client, alice):
    assert client_for(client, alice).post("/runs/").status_code == 405


# --- Detail -------------------------------------------------------------------


def test_detail_shows_everything_and_links(client, alice, db):
    created = timezone.now() - dt.timedelta(seconds=3)
    run = make_run(
        site_id=1,
        member_id=4242,
        status="failed",
        error_message="upstream 502",
        session_id="sess-9",
        tokens_used=12345,
        created_at=created,
        finished_at=created + dt.timedelta(milliseconds=1500),
    )
    response = client_for(client, alice).get(f"/runs/{run.pk}/")
    assert response.status_code == 200
    text = response.text
    for shown in ("upstream 502", "sess-9", "12,345", "app1_chat", "event"):
        assert shown in text
    assert 'data-metric="duration_ms" data-value="1500"' in text
    assert "/runs/?member_id=4242&amp;site=1" in text
    assert "/alerts/?alert_status=all&amp;app_type=app1_chat&amp;site=1" in text


def test_not_an_alert_has_no_alert_link(client, alice, db):
    run = make_run(site_id=1, status="success")
    response = client_for(client, alice).get(f"/runs/{run.pk}/")
    assert "/alerts/?" not in response.text


def test_prompt_only_with_view_prompt(client, alice, bob, db):
    run = make_run(site_id=1, request_prompt="Tell me about 会员 42", response_text="OK!")
    admin_page = client_for(client, alice).get(f"/runs/{run.pk}/")
    assert "Tell me about 会员 42" in admin_page.text
    operator_page = client_for(client, bob).get(f"/runs/{run.pk}/")
    assert "Tell me about" not in operator_page.text and "OK!" not in operator_page.text
    assert "A prompt of 19 characters was recorded" in operator_page.text
    assert "A response of 3 characters was recorded" in operator_page.text


def test_missing_prompt_is_said(client, bob, db):
    run = make_run(site_id=1, request_prompt=None, response_text=None)
    text = client_for(client, bob).get(f"/runs/{run.pk}/").text
    assert "No prompt was recorded" in text and "No response was recorded" in text


@pytest.mark.parametrize("path", ["/runs/999999999999999999/", "/runs/999999999999999999999/"])
def test_bad_ids_are_404(client, alice, path):
    assert client_for(client, alice).get(path).status_code == 404


def test_other_site_run_is_404(client, bob, db):
    other = make_run(site_id=2)
    assert client_for(client, bob).get(f"/runs/{other.pk}/").status_code == 404


def test_detail_is_read_only(client, alice, db):
    run = make_run(site_id=1)
    assert client_for(client, alice).post(f"/runs/{run.pk}/").status_code == 405


@pytest.mark.parametrize("path", ["/runs/", "/runs/?status=failed&page_size=100"])
def test_list_runs_a_fixed_number_of_queries(client, alice, path):
    client_for(client, alice)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(path).status_code == 200
        return len(captured)

    make_run(site_id=1, status="failed")
    few = queries()
    for _ in range(40):
        make_run(site_id=1, status="failed")
        make_run(site_id=2, status="failed")
    assert queries() == few


def test_csv_export_defuses_spreadsheet_formulas(client, bob):
    make_run(site_id=1, status="failed", error_message='=HYPERLINK("http://evil")')
    response = client_for(client, bob).get("/runs/", {"format": "csv"})
    body = b"".join(response.streaming_content).decode()
    assert "'=HYPERLINK" in body
    assert ",=HYPERLINK" not in body


@pytest.mark.parametrize("app_type", ["chat v2", "聊天", "chat-v2.1:beta"])
def test_app_types_with_spaces_or_other_scripts_filter_and_link_to_the_alerts(
    client, alice, db, app_type
):
    """The run page's "see it among the alerts" link works for every app type name."""
    import html
    import re

    alert = make_run(site_id=1, app_type=app_type, status="failed", member_id=5151)
    make_run(site_id=1, app_type="app1_chat", status="failed", member_id=6161)
    client_for(client, alice)

    detail = client.get(f"/runs/{alert.pk}/")
    link = html.unescape(re.search(r'href="(/alerts/\?[^"]+)"', detail.text).group(1))
    alerts = client.get(link)
    assert alerts.status_code == 200
    assert f"/runs/{alert.pk}/" in alerts.text
    runs = client.get("/runs/", {"app_type": app_type})
    assert runs.status_code == 200
    assert "5151" in runs.text and "6161" not in runs.text
