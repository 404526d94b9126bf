"""The failures page ``/failures/`` and its JSON (SPEC.md §8), against a raw-SQL oracle,
and the walk from a group to its alerts and their acknowledgement."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from urllib.parse import parse_qs, urlparse

import pytest
from django.db import connection
from django.utils import timezone

from aimonitor.models import AuditEvent, RunLog
from aimonitor.signature import error_signature
from aimonitor.summaries import failures as failure_summaries
from tests.conftest import client_for, make_run


def ago(**delta) -> dt.datetime:
    return timezone.now() - dt.timedelta(**delta)


@pytest.fixture
def failures(db):
    """Timeouts of app3_clue that differ only in numbers, other failures, noise."""
    runs = {
        "t1": make_run(
            app_type="app3_clue",
            status="timeout",
            site_id=1,
            error_message="Timeout after 3000 ms (member 17)",
            created_at=ago(hours=3),
        ),
        "t2": make_run(
            app_type="app3_clue",
            status="timeout",
            site_id=2,
            error_message="Timeout  after 5000 ms (member 4)\n",
            created_at=ago(hours=1),
            alert_status="acknowledged",
        ),
        "t3": make_run(
            app_type="app3_clue",
            status="timeout",
            site_id=1,
            error_message="Timeout after 12 ms (member 99)",
            created_at=ago(minutes=10),
        ),
        "f1": make_run(
            app_type="app1_chat",
            status="failed",
            site_id=1,
            error_message=None,
            created_at=ago(hours=2),
        ),
        "c1": make_run(
            app_type="app3_clue",
            status="circuit_open",
            site_id=2,
            error_message="circuit open",
            created_at=ago(hours=5),
        ),
        # Outside the range, or not a failure: never counted.
        "old": make_run(
            app_type="app3_clue",
            status="timeout",
            site_id=1,
            error_message="Timeout after 1 ms (member 1)",
            created_at=ago(hours=30),
        ),
        "ok": make_run(app_type="app3_clue", status="success", site_id=1, created_at=ago(hours=1)),
    }
    return runs


ORACLE = """
SELECT app_type, status, sig, count(*),
       count(*) FILTER (WHERE alert_status IS NULL OR alert_status = 'pending'),
       array_agg(DISTINCT site_id ORDER BY site_id), min(created_at), max(created_at)
FROM (SELECT *, left(btrim(regexp_replace(regexp_replace(coalesce(error_message, ''),
             '[0-9]+', '#', 'g'), E'[ \\t\\n\\r\\f\\v]+', ' ', 'g'), ' '), 200) AS sig
      FROM biz.ai_run_logs
      WHERE status IN ('failed', 'timeout', 'circuit_open')
        AND created_at >= %s AND created_at < %s AND site_id = ANY(%s)) f
GROUP BY 1, 2, 3 ORDER BY 4 DESC, 8 DESC
"""


def oracle(since, until, sites):
    with connection.cursor() as cursor:
        cursor.execute(ORACLE, [since, until, sites])
        return cursor.fetchall()


def test_groups_match_the_oracle(client, alice, failures):
    body = client_for(client, alice).get("/failures/?format=json&range=24h").json()
    assert set(body) == {"since", "until", "groups"}
    since, until = (
        dt.datetime.fromisoformat(body["since"]),
        dt.datetime.fromisoformat(body["until"]),
    )
    expected = oracle(since, until, [1, 2])
    got = [
        (
            g["app_type"],
            g["status"],
            g["signature"],
            g["count"],
            g["pending"],
            g["sites"],
            dt.datetime.fromisoformat(g["first_seen"]),
            dt.datetime.fromisoformat(g["last_seen"]),
        )
        for g in body["groups"]
    ]
    assert got == [tuple(row) for row in expected]
    timeouts = body["groups"][0]
    assert timeouts["signature"] == "Timeout after # ms (member #)"
    assert (timeouts["count"], timeouts["pending"], timeouts["sites"]) == (3, 2, [1, 2])
    assert timeouts["sample_error"] == "Timeout after 12 ms (member 99)"  # the newest
    assert sum(h["count"] for h in timeouts["hourly"]) == 3
    assert len(timeouts["hourly"]) in (24, 25)
    # A failure without a message has the empty signature.
    assert any(g["app_type"] == "app1_chat" and g["signature"] == "" for g in body["groups"])


def test_scope_and_filters(client, bob, failures):
    body = client_for(client, bob).get("/failures/?format=json").json()  # site 1 only
    assert all(g["sites"] == [1] for g in body["groups"])
    assert {g["app_type"] for g in body["groups"]} == {"app3_clue", "app1_chat"}
    timeouts = next(g for g in body["groups"] if g["status"] == "timeout")
    assert timeouts["count"] == 2
    body = client.get("/failures/?format=json&status=failed").json()
    assert [g["status"] for g in body["groups"]] == ["failed"]
    body = client.get("/failures/?format=json&app_type=app1_chat&range=1h").json()
    assert body["groups"] == []
    assert client.get("/failures/?site=2").status_code == 403
    assert client.get("/failures/?status=success").status_code == 400


def test_the_page_lists_groups_with_a_sparkline_and_links(client, alice, failures):
    page = client_for(client, alice).get("/failures/").content.decode()
    assert "Timeout after # ms (member #)" in page
    assert '<svg class="chart sparkline"' in page and "<title>" in page
    # The timeouts' sparkline: a bar for each hour with a timeout, and over every hour of
    # the range a focusable slot that says its time and count.
    row = next(r for r in page.split('<tr class="failure-group"')[1:] if "Timeout after" in r)
    sparkline = row[row.index('<svg class="chart sparkline"') : row.index("</svg>")]
    slots = sparkline.count('<rect class="spark-slot" tabindex="0"')
    assert slots in (24, 25)
    per_hour = Counter(
        timezone.localtime(failures[name].created_at).strftime("%Y-%m-%d %H:00")
        for name in ("t1", "t2", "t3")
    )
    assert sparkline.split('d="')[1].split('"')[0].count("M") == len(per_hour)
    for hour, n in per_hour.items():
        assert f"{hour}: {n} failure{'s' if n > 1 else ''}</title>" in sparkline
    assert sparkline.count(": 0 failures</title>") == slots - len(per_hour)


def alerts_link(client, user, group_status="timeout"):
    response = client_for(client, user).get("/failures/?range=24h")
    group = next(g for g in response.context["groups"] if g["status"] == group_status)
    return group


def test_a_group_opens_the_alerts_of_exactly_its_calls(client, alice, failures):
    group = alerts_link(client, alice)
    response = client.get(group["alerts_url"])
    assert response.status_code == 200
    ids = {run.pk for run in response.context["page"].object_list}
    assert ids == {failures[k].pk for k in ("t1", "t2", "t3")}
    # The empty signature (no message) selects the calls without one.
    empty = alerts_link(client, alice, "failed")
    ids = {run.pk for run in client.get(empty["alerts_url"]).context["page"].object_list}
    assert ids == {failures["f1"].pk}


def test_acknowledging_a_group_changes_its_pending_alerts_only(client, alice, failures):
    group = alerts_link(client, alice)
    data = {**group["action_filter"], "scope": "filter", "action": "acknowledge"}
    confirm = client.post("/alerts/", data)
    assert confirm.status_code == 200
    text = confirm.content.decode()
    description = confirm.context["description"]
    assert description.startswith("pending timeouts of app3_clue whose error reads")
    assert "in the last 24h (since " in description
    assert description in text
    assert f"#{failures['t3'].pk}" in text  # the first rows are shown
    ids = confirm.context["ids"]
    assert sorted(map(int, ids.split(","))) == sorted([failures["t1"].pk, failures["t3"].pk])
    done = client.post("/alerts/", {**data, "ids": ids, "confirm": "yes"})
    assert done.status_code == 302
    statuses = dict(RunLog.objects.values_list("pk", "alert_status"))
    assert statuses[failures["t1"].pk] == statuses[failures["t3"].pk] == "acknowledged"
    assert statuses[failures["old"].pk] is None and statuses[failures["c1"].pk] is None
    assert AuditEvent.objects.filter(action="acknowledge").exists()


def test_a_viewer_sees_no_group_action_and_cannot_post_one(client, charlie, failures):
    page = client_for(client, charlie).get("/failures/").content.decode()
    assert "Acknowledge" not in page
    response = client.post(
        "/alerts/", {"scope": "filter", "action": "acknowledge", "alert_status": "pending"}
    )
    assert response.status_code == 403


def test_alert_filters_status_error_member(client, alice, failures):
    client = client_for(client, alice)

    def ids(query):
        response = client.get(f"/alerts/?alert_status=all&{query}")
        assert response.status_code == 200, response.content
        return {r.pk for r in response.context["page"].object_list}

    assert ids("status=timeout&status=circuit_open") == {
        failures[k].pk for k in ("t1", "t2", "t3", "c1", "old")
    }
    assert ids("status=timeout,circuit_open&range=24h") == {
        failures[k].pk for k in ("t1", "t2", "t3", "c1")
    }
    assert ids(f"member_id={failures['t1'].member_id}") == {failures["t1"].pk}
    signature = error_signature("circuit open")
    assert ids(f"error={signature.replace(' ', '+')}") == {failures["c1"].pk}
    assert client.get("/alerts/?status=success").status_code == 400
    assert client.get("/alerts/?error=" + "x" * 201).status_code == 400


def test_group_link_keeps_site_and_range(client, alice, failures):
    response = client_for(client, alice).get("/failures/?range=6h&site=1")
    group = response.context["groups"][0]
    query = parse_qs(urlparse(group["alerts_url"]).query)
    assert query["range"] == ["6h"] and query["site"] == ["1"]
    assert query["alert_status"] == ["all"]


# --- Closed hours read from the failure rollups (aimonitor/summaries/failures.py) -------

MESSAGES = (
    "Timeout after 3000 ms (member 17)",
    "Timeout  after 12 ms\n(member 4)",
    None,
    "upstream returned 500",
    "rate limited (429) for site 2",
    "  ",
)
FAILED_STATUSES = ("failed", "timeout", "circuit_open")
ALERT_STATES = (None, "pending", "acknowledged", "ignored")

FULL_ORACLE = """
SELECT app_type, status, sig, count(*),
       count(*) FILTER (WHERE alert_status IS NULL OR alert_status = 'pending'),
       array_agg(DISTINCT site_id ORDER BY site_id), min(created_at), max(created_at),
       (array_agg(error_message ORDER BY created_at DESC, id DESC))[1]
FROM (SELECT *, left(btrim(regexp_replace(regexp_replace(coalesce(error_message, ''),
             '[0-9]+', '#', 'g'), E'[ \\t\\n\\r\\f\\v]+', ' ', 'g'), ' '), 200) AS sig
      FROM biz.ai_run_logs
      WHERE status IN ('failed', 'timeout', 'circuit_open')
        AND created_at >= %(since)s AND created_at < %(until)s AND site_id = ANY(%(sites)s)) f
GROUP BY 1, 2, 3
"""
HOURLY_ORACLE = """
SELECT app_type, status, left(btrim(regexp_replace(regexp_replace(coalesce(error_message, ''),
       '[0-9]+', '#', 'g'), E'[ \\t\\n\\r\\f\\v]+', ' ', 'g'), ' '), 200),
       date_trunc('hour', created_at, %(zone)s), count(*)
FROM biz.ai_run_logs
WHERE status IN ('failed', 'timeout', 'circuit_open')
  AND created_at >= %(since)s AND created_at < %(until)s AND site_id = ANY(%(sites)s)
GROUP BY 1, 2, 3, 4
"""


def local_midnight(days_back: int = 0) -> dt.datetime:
    day = timezone.localdate() - dt.timedelta(days=days_back)
    return dt.datetime.combine(day, dt.time.min, tzinfo=timezone.get_default_timezone())


def add_failures(count: int, now: dt.datetime) -> None:
    rows = [
        RunLog(
            site_id=1 + i % 3,
            app_type=("app1_chat", "app3_clue")[i % 2],
            trigger_type="event",
            status=(FAILED_STATUSES + ("success",))[i % 4],
            error_message=MESSAGES[(i // 4) % len(MESSAGES)],
            alert_status=ALERT_STATES[(i // 3) % len(ALERT_STATES)],
            latency_ms=None if i % 5 == 0 else 100 + i,
            # The same created_at for some calls: the newest is then the largest id.
            created_at=now - dt.timedelta(minutes=(i * 41) % (60 * 24 * 8), seconds=i % 2),
        )
        for i in range(count)
    ]
    for moment in (local_midnight(1), local_midnight(1) - dt.timedelta(microseconds=1)):
        rows.append(
            RunLog(
                site_id=1,
                app_type="app1_chat",
                trigger_type="event",
                status="timeout",
                error_message="Timeout after 7 ms (member 1)",
                created_at=moment,
            )
        )
    RunLog.objects.bulk_create(rows)


def full_oracle(window, sites) -> dict:
    params = {
        "since": window.since,
        "until": window.until,
        "sites": sites,
        "zone": str(timezone.get_default_timezone()),
    }
    with connection.cursor() as cursor:
        cursor.execute(FULL_ORACLE, params)
        groups = {tuple(row[:3]): list(row[3:]) for row in cursor.fetchall()}
        cursor.execute(HOURLY_ORACLE, params)
        hourly = {}
        for app, status, sig, hour, n in cursor.fetchall():
            hourly.setdefault((app, status, sig), {})[hour] = n
    return groups, hourly


def check_groups(window, sites, site_ids) -> None:
    from aimonitor.figures.failures import failure_groups
    from aimonitor.scope import Scope

    scope = Scope.everything() if site_ids is None else Scope.of_sites(site_ids)
    found = failure_groups(scope, window)
    got = found.groups
    expected, hourly = full_oracle(window, sites)
    assert len(got) == len(expected)
    for group in got:
        key = (group["app_type"], group["status"], group["signature"])
        count, pending, group_sites, first, last, sample = expected[key]
        assert (group["count"], group["pending"], group["sites"]) == (count, pending, group_sites)
        assert (group["first_seen"], group["last_seen"]) == (first, last)
        assert group["sample_error"] == sample, key
        per_hour = {b.start: n for b, n in zip(found.bins, group["counts"], strict=True) if n}
        assert per_hour == hourly[key], key
    order = [(-g["count"], -g["last_seen"].timestamp()) for g in got]
    assert order == sorted(order)


@pytest.mark.parametrize("sites", [None, [1], [2, 3]])
def test_groups_from_the_rollups_match_the_oracle(db, settings, sites):
    from aimonitor import summaries as rollup
    from aimonitor.models import FailureRollup
    from aimonitor.timerange import TimeRange

    settings.ROLLUP_LAG_SECONDS = 0
    now = timezone.now()
    add_failures(900, now)
    rollup.refresh()
    state = rollup.refresh()
    assert state.covered_until is not None and FailureRollup.objects.exists()
    # Late calls: created in closed hours after they were summed (read raw, by id).
    for hours in (5, 30):
        make_run(
            site_id=1,
            app_type="app3_clue",
            status="timeout",
            error_message="Timeout after 1 ms (member 2)",
            created_at=now - dt.timedelta(hours=hours),
        )
    all_sites = sites or [1, 2, 3]
    windows = [
        TimeRange.last("24h", now),
        TimeRange.last("7d", now),
        TimeRange.last("15m", now),
        TimeRange(local_midnight(1), local_midnight(0)),  # the midnight call in, not before
        TimeRange(local_midnight(2) + dt.timedelta(minutes=7), now - dt.timedelta(minutes=3)),
        TimeRange(now - dt.timedelta(days=40), now - dt.timedelta(days=35)),  # nothing
    ]
    for window in windows:
        check_groups(window, all_sites, sites)
    # Acknowledging and reopening alerts changes the pending counts at once.
    failed = RunLog.objects.alerts()
    handled = failed.filter(alert_status__isnull=True).order_by("id")[:60]
    reopened = failed.filter(alert_status="ignored").order_by("-id")[:40]
    assert RunLog.objects.filter(pk__in=list(handled.values_list("pk", flat=True))).update(
        alert_status="acknowledged"
    )
    assert RunLog.objects.filter(pk__in=list(reopened.values_list("pk", flat=True))).update(
        alert_status="pending"
    )
    for window in windows[:2]:
        check_groups(window, all_sites, sites)
    # The worker counts the changed hours again: the same groups, now read from the
    # stored counts (nothing is left changed), which agree with the oracle row by row.
    counted, changed = failure_summaries.count_pending(most=1)  # the newest first
    assert counted == 1 and changed > 1
    for window in windows[:2]:
        check_groups(window, all_sites, sites)  # one counted, the rest still read live
    assert failure_summaries.count_pending() == (changed - 1, changed - 1)
    assert failure_summaries.count_pending() == (0, 0)
    for window in windows[:2]:
        check_groups(window, all_sites, sites)
    assert stored_pending() == live_pending()
    # A second refresh adopts the late calls into their hours: the same groups.
    rollup.refresh()
    check_groups(windows[1], all_sites, sites)
    # The refresh added to the counts and the checksums alike: nothing changed.
    assert failure_summaries.count_pending() == (0, 0)
    assert stored_pending() == live_pending()
    # The oldest handled alert reopened after the count: read live, then counted again.
    quiet = (
        RunLog.objects.alerts().exclude(alert_status="pending").exclude(alert_status__isnull=True)
    )
    quiet.filter(pk__in=quiet.order_by("created_at").values("pk")[:1]).update(alert_status=None)
    check_groups(windows[1], all_sites, sites)
    assert failure_summaries.count_pending()[0] > 0
    check_groups(windows[1], all_sites, sites)
    assert stored_pending() == live_pending()


def stored_pending() -> dict:
    """The stored pending count of every summed (hour, site, group) that has one."""
    from aimonitor.models import FailureRollup

    rows = FailureRollup.objects.filter(pending__gt=0)
    return {(r.hour, r.site_id, r.group_hash): r.pending for r in rows}


def live_pending() -> dict:
    """The same, counted from the calls: the pending alerts of the summed failures."""
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT date_trunc('hour', r.created_at, %s), r.site_id, c.group_hash, count(*)
               FROM biz.ai_run_logs r
               JOIN aimonitor_failurecall c ON c.created_at = r.created_at AND c.run_id = r.id
               WHERE r.status IN ('failed', 'timeout', 'circuit_open')
                 AND (r.alert_status IS NULL OR r.alert_status = 'pending')
                 AND r.id <= (SELECT max_id FROM aimonitor_rollupstate WHERE id = 1)
               GROUP BY 1, 2, 3""",
            [str(timezone.get_default_timezone())],
        )
        return {tuple(row[:3]): row[3] for row in cursor.fetchall()}


def test_groups_export_as_csv_defused_against_formulas(client, alice, failures):
    make_run(
        app_type="app1_chat",
        status="failed",
        site_id=2,
        error_message="=HYPERLINK(1)",
        created_at=ago(minutes=5),
    )
    client = client_for(client, alice)
    response = client.get("/failures/?format=csv&range=24h")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert "failures_" in response["Content-Disposition"]
    lines = b"".join(response.streaming_content).decode("utf-8-sig").splitlines()
    assert lines[0] == (
        "app_type,status,signature,count,pending,sites,first_seen,last_seen,sample_error"
    )
    timeouts = next(line for line in lines if line.startswith("app3_clue,timeout,"))
    assert timeouts.split(",")[2:6] == ["Timeout after # ms (member #)", "3", "2", "1 2"]
    assert timeouts.endswith("Timeout after 12 ms (member 99)")
    assert any(line.startswith("app1_chat,failed,'=HYPERLINK(#)") for line in lines)
    assert any(line.endswith(",'=HYPERLINK(1)") for line in lines)
    assert len(lines) == 1 + len(client.get("/failures/?format=json").json()["groups"])
    assert client.get("/failures/?format=csv&range=2d").status_code == 400
    assert 'href="?format=csv"' in client.get("/failures/").content.decode()
