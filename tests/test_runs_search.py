"""Runs: ``q`` (an id or member id, or error text within the range), the error column,
case-insensitive codes and labels as codes (SPEC.md §8 Lists)."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone

from tests.conftest import client_for, make_run


def ids(client, query):
    response = client.get(f"/runs/?{query}")
    assert response.status_code == 200, response.content[:500]
    return {run.pk for run in response.context["page"].object_list}


def test_q_finds_a_run_id_or_a_member_id(client, alice):
    run = make_run(member_id=424242)
    other = make_run(member_id=run.pk)  # a member whose id is the run's id
    make_run()
    client = client_for(client, alice)
    assert ids(client, f"q={run.pk}") == {run.pk, other.pk}
    assert ids(client, "q=424242") == {run.pk}


def test_q_text_matches_the_error_case_insensitively_within_the_range(client, alice):
    now = timezone.now()
    hit = make_run(status="failed", error_message="Upstream TIMEOUT from model", created_at=now)
    old = make_run(
        status="failed", error_message="upstream timeout", created_at=now - dt.timedelta(hours=30)
    )
    make_run(status="failed", error_message="quota exceeded", created_at=now)
    client = client_for(client, alice)
    assert ids(client, "q=upstream+timeout") == {hit.pk}  # no range: the last 24h
    assert ids(client, "q=upstream+timeout&range=7d") == {hit.pk, old.pk}
    page = client.get("/runs/?q=upstream+timeout").content.decode()
    assert "Upstream TIMEOUT from model" in page  # the error column


def test_codes_are_case_insensitive_and_labels_work(client, alice):
    circuit = make_run(status="circuit_open")
    failed = make_run(status="failed")
    client = client_for(client, alice)
    assert ids(client, "status=Failed") == {failed.pk}
    assert ids(client, "status=circuit+open") == {circuit.pk}
    assert ids(client, "status=CIRCUIT_OPEN") == {circuit.pk}
    assert client.get("/runs/?status=fa+iled").status_code == 400


def test_app_types_of_the_users_sites_are_suggested(client, bob):
    make_run(site_id=1, app_type="app3_clue")
    make_run(site_id=2, app_type="app9_othersite")
    for path in ("/runs/", "/alerts/"):
        page = client_for(client, bob).get(path).content.decode()
        assert '<option value="app3_clue">' in page, path
        assert "app9_othersite" not in page, path
