"""The audit trail reads exactly (issue #13, item 6): every "by whom, how long ago" also
says the exact local time beside it, not only in a hover tooltip."""

from __future__ import annotations

import re

from django.utils import timezone

from aimonitor.models import AuditEvent
from tests.conftest import client_for, make_job, make_run


def exact(moment) -> str:
    local = timezone.localtime(moment)
    return f'(<time datetime="{local.isoformat()}">{local:%Y-%m-%d %H:%M:%S}</time>)'


def test_run_history_and_alerts_say_the_exact_local_time(client, bob):
    alert = make_run(site_id=1, status="failed", error_message="upstream returned 500")
    client_for(client, bob)
    client.post(f"/alerts/{alert.pk}/ack/", {"next": "/alerts/"})
    event = AuditEvent.objects.about("ai_run_logs", alert.pk).get()

    detail = client.get(f"/runs/{alert.pk}/").text
    assert re.search(r"acknowledged by bob, [^<]+ " + re.escape(exact(event.created_at)), detail)
    listing = client.get("/alerts/", {"alert_status": "all"}).text
    assert re.search(r"by bob, [^<]+ " + re.escape(exact(event.created_at)), listing)


def test_job_history_says_the_exact_local_time(client, bob):
    job = make_job(site_id=1, status="failed")
    client_for(client, bob)
    key = client.get(f"/jobs/{job.pk}/").context["retry_key"]
    client.post(f"/jobs/{job.pk}/retry/", {"key": key})
    event = AuditEvent.objects.about("ai_trigger_jobs", job.pk).get()
    html = client.get(f"/jobs/{job.pk}/").text
    assert re.search(r"by bob, [^<]+ " + re.escape(exact(event.created_at)), html)
