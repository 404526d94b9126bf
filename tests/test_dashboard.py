"""The dashboard page ``/``, its HTMX panels and ``/dashboard.json`` (SPEC.md §4)."""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from aimonitor.figures import calls as figures
from aimonitor.localtime import local_day_bounds
from dashboard.overview import PANELS
from tests.conftest import client_for, make_run

JSON_KEYS = {
    "today_calls",
    "today_success_rate",
    "today_tokens",
    "today_avg_latency_ms",
    "today_p95_latency_ms",
    "same_hours_yesterday",
    "change_vs_yesterday",
    "trend_7d",
    "app_distribution",
    "app_health",
    "budget",
    "recent_alerts",
    "range",  # SPEC.md §8: the chosen time range's totals and its apps table
    "apps",
    "incidents",  # the notifier's open incidents in scope (SPEC.md §10)
}


def panel_url(panel: str, query: str = "") -> str:
    return f"/dashboard/panels/{panel}/{query}"


def make_mixed_runs(count: int, site_ids=(1, 2)) -> None:
    """``count`` calls of many kinds over the last days, in the given sites."""
    start = local_day_bounds(timezone.localdate())[0]
    statuses = ("success", "success", "failed", "timeout", "circuit_open", "running")
    for i in range(count):
        make_run(
            site_id=site_ids[i % len(site_ids)],
            app_type=f"app{i % 4}_kind",
            status=statuses[i % len(statuses)],
            tokens_used=None if i % 7 == 0 else 10 * i,
            latency_ms=None if i % 5 == 0 else 100 + i,
            error_message=f"error {i}" if statuses[i % len(statuses)] != "success" else None,
            created_at=start - dt.timedelta(hours=5 * (i % 40)) + dt.timedelta(minutes=i),
        )


class DataMetrics(HTMLParser):
    """Collects ``data-metric`` → ``data-value`` from a page."""

    def __init__(self):
        super().__init__()
        self.metrics: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "data-metric" in attrs:
            assert attrs["data-metric"] not in self.metrics, attrs["data-metric"]
            self.metrics[attrs["data-metric"]] = attrs["data-value"]


def page_metrics(html: str) -> dict[str, str]:
    parser = DataMetrics()
    parser.feed(html)
    return parser.metrics


def json_metrics(data: dict) -> dict:
    """Every figure of /dashboard.json under the name the page gives it."""
    flat = {}
    for key, value in data.items():
        if key in (
            "trend_7d",
            "app_distribution",
            "app_health",
            "recent_alerts",
            "apps",
            "incidents",
        ):
            label = {
                "trend_7d": "date",
                "app_distribution": "app_type",
                "app_health": "app_type",
                "recent_alerts": "id",
                "apps": "app_type",
                "incidents": "id",
            }[key]
            for row in value:
                for field, figure in row.items():
                    if field == label and key not in ("recent_alerts", "incidents"):
                        continue
                    if key in ("recent_alerts", "incidents") and field != "id":
                        continue  # the alert and incident rows carry their id; the rest is text
                    flat[f"{key}.{row[label]}.{field}"] = figure
        elif isinstance(value, dict):
            for field, figure in value.items():
                flat[f"{key}.{field}"] = figure
        else:
            flat[key] = value
    return flat


def same_value(page_value: str, json_value) -> bool:
    if json_value is None:  # an unknown figure (a cost without a price): shown as "—"
        return page_value == ""
    if isinstance(json_value, int | float) and not isinstance(json_value, bool):
        return float(page_value) == float(json_value)
    return page_value == json_value


# --- who may see what ---------------------------------------------------------


@pytest.mark.parametrize("url", ["/", "/dashboard.json", panel_url("today")])
def test_anonymous_visitors_are_sent_to_log_in(client, db, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"/accounts/login/?next={url}"


def test_the_page_shows_todays_figures(client, alice):
    start = local_day_bounds(timezone.localdate())[0]
    make_run(site_id=1, created_at=start, tokens_used=1234, latency_ms=100)
    make_run(site_id=2, created_at=start, status="failed", tokens_used=None, latency_ms=300)

    response = client_for(client, alice).get("/")

    assert response.status_code == 200
    metrics = page_metrics(response.content.decode())
    assert metrics["today_calls"] == "2"
    assert metrics["today_success_rate"] == "0.5"
    assert metrics["today_tokens"] == "1234"
    assert metrics["today_avg_latency_ms"] == "200.0"
    assert "1,234" in response.content.decode()  # thousands separators on screen


def test_viewer_of_site_two_sees_site_two_only(client, charlie, settings):
    settings.DAILY_TOKEN_LIMIT = 1000
    now = timezone.now()
    make_run(site_id=1, app_type="app1_chat", tokens_used=100, created_at=now)
    mine = make_run(site_id=2, app_type="app3_clue", status="failed", created_at=now)
    other_alert = make_run(site_id=1, status="timeout", created_at=now)

    client_for(client, charlie)
    data = client.get("/dashboard.json").json()
    page = client.get("/").content.decode()

    assert data["today_calls"] == 1
    assert [app["app_type"] for app in data["app_health"]] == ["app3_clue"]
    assert [app["app_type"] for app in data["app_distribution"]] == ["app3_clue"]
    assert [alert["id"] for alert in data["recent_alerts"]] == [mine.id]
    assert f'id="alert-{mine.id}"' in page
    assert f'id="alert-{other_alert.id}"' not in page
    # The budget is the whole business's, whoever looks (SPEC.md §4).
    assert data["budget"]["daily_used"] == 100


def test_choosing_a_site_narrows_every_panel_and_stays_in_the_urls(client, alice):
    now = timezone.now()
    make_run(site_id=1, created_at=now)
    make_run(site_id=2, created_at=now)
    make_run(site_id=2, created_at=now)
    client_for(client, alice)

    assert client.get("/dashboard.json").json()["today_calls"] == 3
    assert client.get("/dashboard.json?site=2").json()["today_calls"] == 2
    page = client.get("/?site=2").content.decode()
    assert page_metrics(page)["today_calls"] == "2"
    for panel in PANELS:
        assert f'hx-get="{panel_url(panel, "?site=2")}"' in page
    assert '<option value="2" selected>' in page


@pytest.mark.parametrize(
    "url", ["/?site=1", "/dashboard.json?site=1", panel_url("today", "?site=1")]
)
def test_a_site_outside_the_users_sites_is_forbidden(client, charlie, url):
    assert client_for(client, charlie).get(url).status_code == 403


@pytest.mark.parametrize("site", ["abc", "-1", "0", "99999999999999999999", "1.5"])
def test_a_malformed_site_is_a_400_with_the_error_shown(client, alice, site):
    client_for(client, alice)

    page = client.get("/", {"site": site})
    assert page.status_code == 400
    assert 'class="errorlist' in page.content.decode()
    assert 'id="panel-today"' not in page.content.decode()

    data = client.get("/dashboard.json", {"site": site})
    assert data.status_code == 400
    assert "site" in data.json()["errors"]

    fragment = client.get(panel_url("budget"), {"site": site}, headers={"HX-Request": "true"})
    assert fragment.status_code == 400
    assert 'class="errorlist' in fragment.content.decode()


@pytest.mark.parametrize("url", ["/", "/dashboard.json", panel_url("today")])
def test_the_dashboard_only_answers_get(client, alice, url):
    assert client_for(client, alice).post(url).status_code == 405


def test_an_unknown_panel_is_a_404(client, alice):
    assert client_for(client, alice).get(panel_url("nope")).status_code == 404


# --- JSON and page agree ------------------------------------------------------


def test_json_has_the_reference_keys(client, root):
    make_mixed_runs(20)
    data = client_for(client, root).get("/dashboard.json").json()
    assert set(data) == JSON_KEYS
    assert set(data["budget"]) == {
        "daily_used",
        "daily_limit",
        "daily_pct",
        "monthly_used",
        "monthly_limit",
        "monthly_pct",
    }
    assert [set(row) for row in data["trend_7d"]] == [{"date", "calls", "success_rate"}] * 7
    assert {"app_type", "count", "percentage"} == set(data["app_distribution"][0])
    assert {"app_type", "last_status", "last_call_at"} == set(data["app_health"][0])
    assert set(data["recent_alerts"][0]) == set(figures.ALERT_FIELDS)
    # Times are ISO 8601 in the console's zone.
    last_call = dt.datetime.fromisoformat(data["app_health"][0]["last_call_at"])
    assert last_call.utcoffset() == timezone.localtime().utcoffset()


@pytest.mark.parametrize("price", [None, "0.02"])
def test_every_figure_of_the_json_is_on_the_page(client, alice, settings, price):
    settings.TOKEN_PRICE_PER_1K = price
    make_mixed_runs(60)
    client_for(client, alice)

    # A fixed window: "24h" would end at each request's own moment.
    today = timezone.localdate()
    window = (
        f"?since={today - dt.timedelta(days=6)}T00:00&until={today + dt.timedelta(days=1)}T00:00"
    )
    data = client.get("/dashboard.json" + window).json()
    metrics = page_metrics(client.get("/" + window).content.decode())

    expected = json_metrics(data)
    assert set(metrics) == set(expected)
    mismatched = {
        name: (metrics[name], value)
        for name, value in expected.items()
        if not same_value(metrics[name], value)
    }
    assert mismatched == {}
    assert ("today_cost" in metrics) is (price is not None)


def test_each_panel_fragment_renders_the_same_figures_as_the_page(client, alice):
    make_mixed_runs(30)
    client_for(client, alice)
    window = "?since=2026-01-01T00:00&until=2026-01-02T00:00"  # a fixed window
    page = page_metrics(client.get("/" + window).content.decode())

    from_fragments = {}
    for panel in PANELS:
        response = client.get(panel_url(panel, window), headers={"HX-Request": "true"})
        assert response.status_code == 200
        html = response.content.decode()
        assert "<html" not in html  # a fragment, not a page
        assert html.strip().startswith(f'<section id="panel-{panel}"')
        from_fragments.update(page_metrics(html))
    assert from_fragments == page


# --- live panels ----------------------------------------------------------------


def test_every_panel_polls_its_own_fragment(client, alice):
    html = client_for(client, alice).get("/").content.decode()
    for panel in PANELS:
        tag = re.search(rf'<section id="panel-{panel}"[^>]*>', html).group(0)
        assert f'hx-get="{panel_url(panel)}"' in tag
        assert 'hx-trigger="every 30s, refresh"' in tag
        assert 'hx-swap="outerHTML"' in tag
        assert "data-poll" in tag


def test_app_health_says_when_the_last_call_was(client, alice):
    make_run(
        app_type="app3_clue", status="timeout", created_at=timezone.now() - dt.timedelta(minutes=5)
    )
    html = client_for(client, alice).get("/").content.decode()
    assert "last call 5\xa0minutes ago" in html
    assert '<span class="status status-timeout">timeout</span>' in html


def test_recent_alerts_link_to_the_run_and_act_inline(client, alice):
    alert = make_run(status="circuit_open", error_message="breaker open")
    html = client_for(client, alice).get(panel_url("recent_alerts")).content.decode()
    row = re.search(rf'<tr id="alert-{alert.id}".*?</tr>', html, re.S).group(0)
    assert f'href="/runs/{alert.id}/"' in row
    assert "breaker open" in row
    assert f'hx-post="/alerts/{alert.id}/ack/"' in row
    assert f'hx-post="/alerts/{alert.id}/ignore/"' in row
    assert "Reopen" not in row


def test_acknowledging_from_the_dashboard_swaps_the_compact_row(client, alice):
    alert = make_run(site_id=1, status="failed")
    client_for(client, alice)
    response = client.post(
        f"/alerts/{alert.id}/ack/",
        {"layout": "compact", "next": "/?site=1"},
        HTTP_HX_REQUEST="true",
    )
    alert.refresh_from_db()
    assert alert.alert_status == "acknowledged"
    html = response.content.decode()
    assert f'data-metric="recent_alerts.{alert.id}.id"' in html  # the dashboard's shape
    assert 'name="ids"' not in html  # no bulk checkbox on the dashboard
    assert 'id="nav-alert-count"' in html
    # Without HTMX the post returns to the dashboard it came from.
    plain = client.post(f"/alerts/{alert.id}/reopen/", {"layout": "compact", "next": "/?site=1"})
    assert plain.status_code == 302
    assert plain["Location"] == "/?site=1"


def test_viewer_sees_recent_alerts_without_actions(client, charlie):
    make_run(site_id=2, status="timeout")
    html = client_for(client, charlie).get(panel_url("recent_alerts")).content.decode()
    assert "/ack/" not in html


def slow_figure(runs):
    """A figure whose query hits the statement timeout."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = '1ms'")
        cursor.execute("SELECT pg_sleep(0.2)")


def test_a_failing_panel_says_so_and_the_rest_stays_live(client, alice, monkeypatch):
    monkeypatch.setattr(figures, "trend_7d", slow_figure)
    make_run()
    client_for(client, alice)

    response = client.get("/")

    assert response.status_code == 200
    html = response.content.decode()
    trend = re.search(r'<section id="panel-trend_7d".*?</section>', html, re.S).group(0)
    assert "unavailable — retrying" in trend
    assert 'hx-trigger="every 30s, refresh"' in trend  # keeps polling
    assert page_metrics(html)["today_calls"] == "1"
    assert html.count("unavailable — retrying") == 1

    fragment = client.get(panel_url("trend_7d"), headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "unavailable — retrying" in fragment.content.decode()
    assert client.get(panel_url("today")).status_code == 200


# --- a fixed number of queries --------------------------------------------------


def count_queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


@pytest.mark.parametrize("user", ["alice", "root"])
@pytest.mark.parametrize("url", ["/", "/dashboard.json", *(panel_url(p) for p in PANELS)])
def test_query_count_does_not_grow_with_the_rows(client, db, request, user, url):
    client_for(client, request.getfixturevalue(user))
    make_mixed_runs(5)
    few = count_queries(client, url)
    make_mixed_runs(50, site_ids=(1, 2, 3))
    assert count_queries(client, url) == few
    # 8 panels in savepoints (the range's: sums, per-app sums, prices, last calls),
    # the rollups' one refresh, the layout.
    assert few <= 35
