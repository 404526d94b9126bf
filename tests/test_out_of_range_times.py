"""Timestamps PostgreSQL allows and Python's datetime cannot hold never break a page.

``infinity``, ``-infinity``, years past 9999 and BC dates are valid ``timestamptz``
values (a cache entry that never expires is naturally ``expires_at = 'infinity'``).
They are read as text (``aimonitor/timestamps.py``) and shown as "never", "always" or
"out of range: …"; CSV and JSON carry PostgreSQL's own text.
"""

from __future__ import annotations

import csv
import io
import json

import psycopg2
import pytest
from django.db import connection

from aimonitor.models import CacheEntry, RunLog
from aimonitor.timestamps import PSYCOPG2_TIMESTAMPTZ, OutOfRangeTime
from tests.conftest import client_for, make_cache, make_run

VALUES = [
    "infinity",
    "-infinity",
    "10000-01-01 00:00:00+00",
    "294276-12-31 23:59:59+00",
    "0001-01-01 00:00:00+00 BC",
    "9999-12-31 23:00:00+00",  # a datetime in UTC, but not in Asia/Shanghai
    "0001-01-01 00:00:00+00",
]


def set_times(value: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{RunLog._meta.db_table}" SET created_at = %s::timestamptz, finished_at = %s::timestamptz',
            [value, value],
        )
        cursor.execute(
            f'UPDATE "{CacheEntry._meta.db_table}" SET created_at = %s::timestamptz, expires_at = %s::timestamptz',
            [value, value],
        )


def body(response) -> str:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return content.decode("utf-8-sig")


@pytest.mark.parametrize("value", VALUES)
def test_pages_show_out_of_range_times(client, root, value):
    run = make_run(status="failed", error_message="the failing call")
    entry = make_cache(target_id="the-target")
    set_times(value)
    client_for(client, root)
    pages = [
        "/",
        "/runs/",
        f"/runs/{run.pk}/",
        "/alerts/",
        "/cache/",
        "/admin/aimonitor/runlog/",
        f"/admin/aimonitor/runlog/{run.pk}/change/",
        "/admin/aimonitor/cacheentry/",
        f"/admin/aimonitor/cacheentry/{entry.pk}/change/",
        "/dashboard/panels/app_health/",
        "/dashboard/panels/recent_alerts/",
    ]
    label = {"infinity": "never", "-infinity": "always"}.get(value, f"out of range: {value}")
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        assert label in body(response), page


def test_a_cache_entry_that_never_expires(client, root):
    make_cache(target_id="forever")
    set_times("infinity")
    client_for(client, root)
    page = client.get("/cache/")
    assert "never" in body(page)
    rows = list(csv.DictReader(io.StringIO(body(client.get("/cache/?format=csv")))))
    assert [(row["target_id"], row["expires_at"]) for row in rows] == [("forever", "infinity")]


def test_csv_and_json_carry_postgresql_text(client, root):
    make_run(status="failed", app_type="app_far")
    set_times("10000-01-01 00:00:00+00")
    client_for(client, root)
    rows = list(csv.DictReader(io.StringIO(body(client.get("/runs/?format=csv")))))
    assert rows[0]["created_at"] == "10000-01-01 00:00:00+00"
    figures = json.loads(body(client.get("/dashboard.json")))
    assert figures["app_health"] == [
        {"app_type": "app_far", "last_status": "failed", "last_call_at": "10000-01-01 00:00:00+00"}
    ]


def test_a_run_finished_at_infinity_has_no_duration(client, root):
    run = make_run()
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{RunLog._meta.db_table}" SET finished_at = %s', ["infinity"])
    page = body(client_for(client, root).get(f"/runs/{run.pk}/"))
    assert "never" in page
    assert 'data-metric="duration_ms"' not in page


def test_chinese_pages_translate_the_label(client, root):
    make_cache()
    set_times("infinity")
    client_for(client, root)
    client.cookies["django_language"] = "zh-hans"
    assert "永不" in body(client.get("/cache/"))


@pytest.mark.parametrize("value", VALUES)
def test_psycopg2_reads_them_as_text_too(db, value):
    """Django picks psycopg 3 when installed; the psycopg2 caster is checked directly."""
    params = connection.get_connection_params()
    raw = psycopg2.connect(
        dbname=params.get("dbname"),
        user=params.get("user"),
        host=params.get("host"),
        port=params.get("port"),
        password=params.get("password"),
    )
    try:
        psycopg2.extensions.register_type(PSYCOPG2_TIMESTAMPTZ, raw)
        with raw.cursor() as cursor:
            cursor.execute("SELECT %s::timestamptz, now()", [value])
            out, now = cursor.fetchone()
    finally:
        raw.close()
    assert isinstance(out, OutOfRangeTime)
    assert now.tzinfo is not None


@pytest.mark.parametrize("value", VALUES)
def test_failure_groups_sum_and_count_them_again_without_error(client, root, settings, value):
    """A pending failure at such a time is summed (as a late call), counted again after
    it is acknowledged, and the failures page still answers (its ranges are finite)."""
    from aimonitor import summaries
    from aimonitor.summaries import failures

    settings.ROLLUP_LAG_SECONDS = 0
    make_run(status="failed", error_message="the failing call", site_id=2**63 - 1)
    set_times(value)
    summaries.refresh()
    summaries.refresh()
    assert failures.count_pending() == (0, 0)
    RunLog.objects.update(alert_status="acknowledged")
    counted, changed = failures.count_pending()
    assert counted == changed
    assert failures.count_pending() == (0, 0)
    client_for(client, root)
    for page in ("/failures/?range=30d", "/failures/?range=30d&format=json"):
        assert client.get(page).status_code == 200, page
