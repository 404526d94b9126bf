"""Small readability fixes of issue #13, item 7: run detail explains latency against
duration; a bad date in a filter comes back as typed."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from tests.conftest import client_for, make_run

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}


def test_run_detail_says_what_latency_and_duration_mean(client, bob):
    start = timezone.now() - dt.timedelta(seconds=5)
    run = make_run(
        site_id=1, latency_ms=1_200, created_at=start, finished_at=start + dt.timedelta(seconds=4)
    )
    client_for(client, bob)
    html = client.get(f"/runs/{run.pk}/").text
    assert "The model call alone, as the AI service measured and reported it." in html
    assert "Finished minus created: the whole run" in html
    assert 'data-value="4000"' in html
    html = client.get(f"/runs/{run.pk}/", **ZH).text
    assert "仅模型调用本身" in html and "完成时间减去创建时间" in html


def test_an_invalid_date_keeps_what_was_typed(client, bob):
    client_for(client, bob)
    for path in ("/runs/", "/jobs/", "/cache/", "/alerts/"):
        response = client.get(path, {"date_from": "2026-02-30", "app_type": "app1_chat"})
        assert response.status_code == 400
        html = response.text
        assert (
            '<input type="text" name="date_from" value="2026-02-30" aria-invalid="true"' in html
        ), path
        assert "Enter a valid date." in html
    # A valid one stays a date input.
    html = client.get("/runs/", {"date_from": "2026-02-28"}).text
    assert '<input type="date" name="date_from" value="2026-02-28"' in html
