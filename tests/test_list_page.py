"""The one list page (templates/aimonitor/list_page.html) and what the pages share.

Runs, jobs, cache, alerts and failures extend one template; an HTMX request gets its
results block, which is exactly what the whole page shows in ``#results``. Links are
``{% url %}``/``reverse``, never written paths, and the limits a page states come
from the code that enforces them.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from tests.conftest import client_for, make_cache, make_job, make_run

LISTS = ["/runs/", "/jobs/", "/cache/", "/alerts/", "/failures/"]


def squeeze(html: str) -> str:
    """The markup without the whitespace between and around tags."""
    html = re.sub(r"\s+", " ", html)
    return re.sub(r"\s*(<|>)\s*", r"\1", html).strip()


def rows(alice_sites=(1, 2)) -> None:
    for site in alice_sites:
        make_run(site_id=site, status="failed", error_message="boom", member_id=41)
        make_run(site_id=site, status="success")
        make_job(site_id=site, status="failed", member_id=42)
        make_cache(site_id=site, target_id=f"t{site}")


@pytest.mark.parametrize("url", LISTS)
def test_every_list_extends_the_list_page(client, alice, url):
    rows()
    page = client_for(client, alice).get(url)
    fragment = client.get(url, HTTP_HX_REQUEST="true")
    names = [template.name for template in page.templates]
    assert "aimonitor/list_page.html" in names and "base.html" in names
    fragment_names = [template.name for template in fragment.templates]
    assert "aimonitor/list_results.html" in fragment_names and "base.html" not in fragment_names
    for response in (page, fragment):
        assert response.status_code == 200
        assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize("url", [*LISTS, "/runs/?member_id=x", "/alerts/?alert_status=all"])
def test_the_fragment_is_what_the_page_shows_in_results(client, alice, url):
    rows()
    page = client_for(client, alice).get(url).content.decode()
    fragment = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in fragment
    # What only a fragment carries, out of band: the export link, the jobs' health panel.
    fragment = re.sub(r'<a id="export-csv"[^>]*hx-swap-oob[^>]*>.*?</a>', "", fragment, flags=re.S)
    fragment = re.sub(r'<section id="queue-health".*?</section>', "", fragment, flags=re.S)
    fragment = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", fragment)
    page = squeeze(re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", page))
    assert '<div id="results" aria-live="polite">' + squeeze(fragment) + "</div>" in page


def test_the_bulk_retry_states_the_cap_the_operation_enforces(client, alice, monkeypatch):
    monkeypatch.setattr("dashboard.jobs.BULK_LIMIT", 7)
    make_job(site_id=1, status="failed")
    html = client_for(client, alice).get("/jobs/").content.decode()
    assert "At most 7 at once; you confirm on the next page." in html


def test_the_alerts_bulk_form_states_the_count_cap_in_force(client, alice, monkeypatch):
    monkeypatch.setattr("aimonitor.listing.COUNT_CAP", 3)
    for _ in range(5):
        make_run(site_id=1, status="failed")
    html = client_for(client, alice).get("/alerts/").content.decode()
    assert "all 3+ alerts matching this filter" in html


TEMPLATES = Path(settings.BASE_DIR) / "templates"
WRITTEN_PATH = re.compile(r'\b(?:href|action|hx-get|hx-post|formaction)="/')


def test_no_template_writes_a_path():
    """Links are {% url %}; 500.html alone resolves nothing (it must render whatever broke)."""
    offenders = {
        str(path.relative_to(TEMPLATES)): WRITTEN_PATH.findall(path.read_text(encoding="utf-8"))
        for path in sorted(TEMPLATES.rglob("*.html"))
        if path.name != "500.html" and WRITTEN_PATH.search(path.read_text(encoding="utf-8"))
    }
    assert offenders == {}


def test_no_view_writes_a_path():
    """Views build paths with reverse(): a literal "/runs/" would survive a moved URL."""
    literal = re.compile(r"[\"']/(?:runs|jobs|cache|alerts|failures|incidents|batch|dashboard)\b")
    base = Path(settings.BASE_DIR)
    offenders = [
        f"{path.relative_to(base)}:{number}"
        for folder in ("aimonitor", "dashboard", "alerts")
        for path in sorted((base / folder).rglob("*.py"))
        if "migrations" not in path.parts and path.name != "urls.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if literal.search(line)
    ]
    assert offenders == []


def render(source: str, query: str = "", **context) -> str:
    request = RequestFactory().get("/runs/" + query)
    context = Context({"request": request, **context})
    return Template("{% load console %}" + source).render(context).strip()


def test_filter_link_narrows_the_list_and_keeps_the_other_filters():
    html = render('{% filter_link "member_id" 42 %}', "?status=failed&page=3&member_id=1")
    assert html == '<a href="?status=failed&amp;member_id=42">42</a>'
    assert render('{% filter_link "member_id" None %}') == ""


def test_the_cell_tags_draw_the_shared_partials():
    moment = timezone.make_aware(
        dt.datetime(2026, 11, 28, 14, 7, 12), timezone.get_fixed_timezone(0)
    )
    with timezone.override("UTC"):
        when = render("{% when moment %}", moment=moment)
        exact = render("{% exact_time moment %}", moment=moment)
    assert when.startswith('<time datetime="2026-11-28T14:07:12+00:00" title="')
    assert when.endswith('">2026-11-28 14:07:12</time>')
    assert exact == '<time datetime="2026-11-28T14:07:12+00:00">2026-11-28 14:07:12</time>'
    status = '<span class="status status-{}">{}</span>'
    assert render('{% status "circuit_open" %}') == status.format("circuit_open", "circuit_open")
    assert render('{% status "failed" "Failed" %}') == status.format("failed", "Failed")
    assert render("{% status None %}") == status.format("none", "none")
