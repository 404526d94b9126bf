"""Issue #9: every page runs a fixed number of queries, whatever the number of rows.

Each list page (unfiltered and with each single filter), each dashboard fragment,
the dashboard itself and ``/dashboard.json`` are requested over 5 rows of every
kind, then over 50: the number of queries must be the same. The rows come with
what a page shows beside them (audit events of triaged alerts, retried jobs,
invalidated cache entries), so a query per row would show up as a difference.
The timings themselves are the bench's business (``make bench``), not the suite's.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aimonitor.localtime import local_today
from aimonitor.models import CacheEntry, RunLog, TriggerJob
from aimonitor.operations.alerts import set_alert_status
from aimonitor.operations.cache import invalidate_entries
from aimonitor.operations.jobs import retry_jobs
from dashboard.overview import PANELS
from tests.conftest import client_for, make_job, make_run

APPS = [f"app{n}_kind" for n in range(1, 9)]
RUN_STATUSES = ("failed", "success", "timeout", "circuit_open", "success", "running", "success")
JOB_STATUSES = ("success", "failed", "pending", "running", "skipped_duplicate")
SITES = (1, 2, 3)
DAY_FROM = (local_today() - dt.timedelta(days=7)).isoformat()
DAY_TO = (local_today() - dt.timedelta(days=1)).isoformat()

DASHBOARD = [
    "/",
    "/?site=1",
    "/dashboard.json",
    "/dashboard.json?site=1",
    "/dashboard.json?range=7d",
    "/?range=30d",
    *(f"/dashboard/panels/{panel}/" for panel in PANELS),
    *(f"/dashboard/panels/{panel}/?site=1" for panel in PANELS),
]
# Every list unfiltered and with each single filter; each matches rows of every site.
LISTS = [
    "/runs/",
    "/runs/?app_type=app1_kind",
    "/runs/?status=failed",
    "/runs/?trigger_type=chat",
    "/runs/?member_id=5001",
    "/runs/?site=1",
    f"/runs/?date_from={DAY_FROM}",
    f"/runs/?date_to={DAY_TO}",
    "/runs/?page_size=100",
    "/jobs/",
    "/jobs/?event_type=recharge",
    "/jobs/?status=failed",
    "/jobs/?member_id=5001",
    "/jobs/?is_forced=true",
    "/jobs/?batch=b-1",
    "/jobs/?site=1",
    f"/jobs/?date_from={DAY_FROM}",
    "/jobs/?page_size=100",
    "/jobs/?retried=yes",
    "/jobs/?retried=no",
    "/jobs/?stuck=yes",
    "/jobs/health/",
    "/jobs/health/?site=1",
    "/cache/",
    "/cache/?cache_type=app1_kind",
    "/cache/?target_id=5001",
    "/cache/?status=invalidated",
    "/cache/?site=1",
    "/alerts/",
    "/alerts/?alert_status=all",
    "/alerts/?alert_status=acknowledged",
    "/alerts/?alert_status=ignored",
    "/alerts/?app_type=app4_kind",
    "/alerts/?site=1",
    f"/alerts/?date_from={DAY_FROM}",
    "/alerts/?alert_status=all&page_size=100",
    "/alerts/?alert_status=all&status=timeout&status=failed&range=7d",
    "/alerts/?error=error+%23&member_id=5001",
    "/runs/?range=24h",
    "/runs/?since=2026-01-01T00:00&until=2026-01-20T00:00",
    "/failures/",
    "/failures/?range=30d",
    "/failures/?format=json&site=1",
]


class Rows:
    """Adds rows of every table and kind to each site, with the audit trail beside them."""

    def __init__(self, triager):
        self.triager = triager
        self.serial = itertools.count()

    def add(self, per_site: int) -> None:
        now = timezone.now()
        runs, jobs, entries = [], [], []
        for _ in range(per_site):
            n = next(self.serial)
            created = now - dt.timedelta(hours=13 * (n % 40), minutes=n % 60)
            status = RUN_STATUSES[n % len(RUN_STATUSES)]
            for site in SITES:
                runs.append(
                    RunLog(
                        site_id=site,
                        app_type=APPS[n % len(APPS)],
                        trigger_type=("event", "chat", "batch")[n % 3],
                        member_id=5001 if n % 2 else 5000 + n,
                        request_prompt="the prompt",
                        response_text="the response",
                        status=status,
                        tokens_used=None if n % 6 == 5 else 50 + n,
                        latency_ms=None if n % 5 == 4 else 100 + n,
                        error_message=None if status == "success" else "boom",
                        created_at=created,
                    )
                )
                jobs.append(
                    TriggerJob(
                        site_id=site,
                        event_type=("consumption", "recharge")[n % 2],
                        member_id=5001 if n % 2 else 5000 + n,
                        status=JOB_STATUSES[n % len(JOB_STATUSES)],
                        payload={"batch_id": "b-1"} if n % 3 == 0 else {"amount": n},
                        app_chain="app3_clue,app2_summary",
                        is_forced=n % 4 == 0,
                        created_at=created,
                    )
                )
                entries.append(
                    CacheEntry(
                        site_id=site,
                        cache_type=APPS[n % len(APPS)],
                        target_id="5001" if n % 2 else str(5000 + n),
                        result_json={"score": n},
                        created_at=created,
                        expires_at=created + dt.timedelta(days=7),
                    )
                )
        runs = RunLog.objects.bulk_create(runs)
        jobs = TriggerJob.objects.bulk_create(jobs)
        entries = CacheEntry.objects.bulk_create(entries)
        # Every triage state, retries and invalidations, through the domain operations;
        # rows come in groups of one per site, so each site gets every kind.
        groups = len(SITES)
        alerts = [run.id for run in runs if run.is_alert]
        acknowledged = [i for k, i in enumerate(alerts) if k // groups % 3 == 0]
        ignored = [i for k, i in enumerate(alerts) if k // groups % 3 == 1]
        set_alert_status(self.triager, acknowledged, "acknowledge")
        set_alert_status(self.triager, ignored, "ignore")
        set_alert_status(self.triager, acknowledged[groups * 2 :: groups * 3], "reopen")
        retry_jobs(self.triager, [job.id for k, job in enumerate(jobs) if k // groups % 2 == 0])
        invalidate_entries(
            self.triager, [e.id for k, e in enumerate(entries) if k // groups % 3 == 0]
        )


@pytest.fixture
def rows(root):
    return Rows(root)


def count_queries(client, url: str) -> tuple[int, list[str]]:
    fragment = {"HTTP_HX_REQUEST": "true"} if "/panels/" in url else {}
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **fragment)
        assert response.status_code == 200, url
    return len(captured), [q["sql"] for q in captured.captured_queries]


@pytest.mark.parametrize("user", ["root", "bob"])
@pytest.mark.parametrize("url", DASHBOARD + LISTS)
def test_queries_per_page_do_not_grow_with_the_rows(client, request, rows, user, url):
    client_for(client, request.getfixturevalue(user))
    rows.add(5)
    few, _ = count_queries(client, url)
    rows.add(45)
    many, many_sql = count_queries(client, url)
    assert many == few, "\n".join(many_sql)


@pytest.mark.parametrize("url", ["/runs/?format=csv", "/jobs/?format=csv", "/alerts/?format=csv"])
def test_csv_export_streams_with_a_fixed_number_of_queries(client, bob, rows, url):
    client_for(client, bob)

    def export() -> tuple[int, int]:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
            assert response.status_code == 200
            lines = b"".join(response.streaming_content).count(b"\n")
        return len(captured), lines

    rows.add(5)
    few, few_lines = export()
    rows.add(45)
    many, many_lines = export()
    assert many_lines > few_lines
    assert many == few


def test_detail_pages_do_not_grow_with_their_history(client, bob, root):
    client_for(client, bob)
    run = make_run(status="failed")
    job = make_job(status="failed")
    pages = [f"/runs/{run.id}/", f"/jobs/{job.id}/"]
    set_alert_status(root, [run.id], "acknowledge")
    retry_jobs(root, [job.id])
    few = [count_queries(client, url)[0] for url in pages]
    for action in ("reopen", "ignore") * 10:
        set_alert_status(root, [run.id], action)
    for _ in range(10):
        retry_jobs(root, [job.id], again_ok=True)
    assert [count_queries(client, url)[0] for url in pages] == few


def test_incidents_page_does_not_grow_with_incidents_and_deliveries(client, bob, root):
    from alerts.models import AlertRule, Channel, Delivery, Incident

    channel = Channel.objects.create(name="hook", kind="webhook", url="http://127.0.0.1:9/")
    acker = root

    def add(n: int) -> None:
        for _ in range(n):
            rule = AlertRule.objects.create(name="r", kind="failure_count", site_id=1, threshold=1)
            incident = Incident.objects.create(
                rule=rule,
                key=f"site=1;app=a{rule.pk}",
                site_id=1,
                app_type="app1_chat",
                last_value=2,
                threshold=1,
                window_minutes=15,
                acknowledged_by=acker,
                acknowledged_at=timezone.now(),
            )
            for event, sequence in (("firing", 0), ("reminder", 1), ("reminder", 2)):
                Delivery.objects.create(
                    incident=incident, channel=channel, event=event, sequence=sequence
                )

    for user in (bob, root):
        client_for(client, user)
        add(5)
        few = [count_queries(client, url)[0] for url in ("/incidents/", "/incidents/?site=1")]
        add(45)
        many = [count_queries(client, url)[0] for url in ("/incidents/", "/incidents/?site=1")]
        assert many == few
