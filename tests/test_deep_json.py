"""JSON nested deeper than Python recurses never breaks a page or an action (issue #12, 3).

A job payload or cache result nested ~1,500 levels (PostgreSQL stores it gladly) is
kept as its stored text (``aimonitor/deepjson.py``): the job page shows it with a note,
the admin shows it, and every retry path — the job page, "retry all matching", the
admin action — copies it exactly.
"""

from __future__ import annotations

import html
import json

import pytest
from django.db import connection

from aimonitor.deepjson import MAX_DEPTH, StoredJSON, depth
from aimonitor.models import CacheEntry, TriggerJob
from tests.conftest import client_for, make_cache, make_job

DEEP = 1500


def nested(levels: int) -> str:
    return (
        '{"a": ' * (levels // 2)
        + "[" * (levels - levels // 2)
        + '"x]{"'
        + "]" * (levels - levels // 2)
        + "}" * (levels // 2)
    )


def store(model, column: str, text: str, pk=None) -> None:
    where = "" if pk is None else f" WHERE id = {int(pk)}"
    with connection.cursor() as cursor:
        cursor.execute(f'UPDATE "{model._meta.db_table}" SET {column} = %s::jsonb{where}', [text])


def same_payload(original: int, copy: int) -> bool:
    table = TriggerJob._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'SELECT (SELECT payload FROM "{table}" WHERE id = %s) = (SELECT payload FROM "{table}" WHERE id = %s)',
            [original, copy],
        )
        return cursor.fetchone()[0]


def copies_of(job_ids) -> dict[int, int]:
    copies = TriggerJob.objects.filter(is_forced=True).exclude(pk__in=job_ids).order_by("pk")
    return dict(zip(sorted(job_ids), copies.values_list("pk", flat=True), strict=True))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('["[[[[", "\\"]]]"]', 1),  # brackets inside strings, escaped quotes
        (nested(DEEP), DEEP),
    ],
)
def test_depth_counts_levels_without_recursion(text, expected):
    assert depth(text) == expected


def test_values_up_to_the_limit_are_parsed_deeper_ones_kept_as_text(db):
    job = make_job(payload=None)
    store(TriggerJob, "payload", "[" * MAX_DEPTH + "]" * MAX_DEPTH, job.pk)
    assert isinstance(TriggerJob.objects.get(pk=job.pk).payload, list)
    store(TriggerJob, "payload", "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), job.pk)
    assert isinstance(TriggerJob.objects.get(pk=job.pk).payload, StoredJSON)


def test_job_page_and_admin_show_a_deep_payload(client, root):
    job = make_job(status="failed")
    entry = make_cache()
    store(TriggerJob, "payload", nested(DEEP))
    store(CacheEntry, "result_json", nested(DEEP))
    client_for(client, root)
    page = client.get(f"/jobs/{job.pk}/")
    assert page.status_code == 200
    assert f"Nested more than {MAX_DEPTH} levels deep: shown as stored." in page.text
    assert "[[[[[[" in page.text
    for url in (
        f"/admin/aimonitor/triggerjob/{job.pk}/change/",
        f"/admin/aimonitor/cacheentry/{entry.pk}/change/",
        "/admin/aimonitor/triggerjob/",
        "/admin/aimonitor/cacheentry/",
        "/jobs/",
        "/cache/",
        "/jobs/?format=csv",
        "/cache/?format=csv",
    ):
        response = client.get(url)
        assert response.status_code == 200, url
        if response.streaming:
            b"".join(response.streaming_content)


def test_a_shallow_payload_is_still_laid_out(client, root):
    job = make_job(payload={"b": [1, {"c": "充值"}], "a": 1})
    page = client_for(client, root).get(f"/jobs/{job.pk}/")
    assert '{\n  "a": 1,\n  "b": [\n    1,' in html.unescape(page.text)
    assert "shown as stored" not in page.text


def test_retrying_a_deep_job_copies_its_payload_exactly(client, bob):
    job = make_job(site_id=1, status="failed")
    store(TriggerJob, "payload", nested(DEEP), job.pk)
    client_for(client, bob)
    response = client.post(f"/jobs/{job.pk}/retry/")
    assert response.status_code == 302
    copy = copies_of([job.pk])[job.pk]
    assert same_payload(job.pk, copy)


def test_retry_all_matching_with_one_deep_job_retries_every_job(client, bob):
    jobs = [make_job(site_id=1, event_type="deep", status="failed") for _ in range(3)]
    store(TriggerJob, "payload", nested(DEEP), jobs[1].pk)
    client_for(client, bob)
    data = {"action": "retry", "select_across": "1", "event_type": "deep"}
    confirm = client.post("/jobs/", data)
    assert confirm.status_code == 200
    assert 'id="retry-count" data-value="3"' in confirm.text
    confirmed = {
        **data,
        "confirm": "yes",
        "ids": confirm.context["ids"],
        "key": confirm.context["key"],
    }
    client.post("/jobs/", confirmed)
    copies = copies_of([job.pk for job in jobs])
    assert all(same_payload(original, copy) for original, copy in copies.items())


def test_admin_retry_action_copies_a_deep_payload(client, alice):
    job = make_job(site_id=1, status="failed")
    store(TriggerJob, "payload", nested(DEEP), job.pk)
    client_for(client, alice)
    response = client.post(
        "/admin/aimonitor/triggerjob/", {"action": "retry_jobs", "_selected_action": [job.pk]}
    )
    assert response.status_code == 302
    assert same_payload(job.pk, copies_of([job.pk])[job.pk])


def test_shallow_payloads_round_trip_as_json(db):
    job = make_job(payload={"batch_id": "b1", "n": [1, 2]})
    assert TriggerJob.objects.get(pk=job.pk).payload == {"batch_id": "b1", "n": [1, 2]}
    assert json.loads(json.dumps(TriggerJob.objects.get(pk=job.pk).payload)) == {
        "batch_id": "b1",
        "n": [1, 2],
    }
