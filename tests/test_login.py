"""Logging in and out: every page needs a session (SPEC.md §4, §7)."""

from __future__ import annotations

from tests.conftest import PASSWORD


def test_the_dashboard_sends_anonymous_visitors_to_the_login_page(client, db):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/"
    assert client.get(response["Location"]).status_code == 200


def test_the_right_password_lands_on_the_dashboard(client, bob):
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": PASSWORD, "next": "/"}, follow=True
    )
    assert response.redirect_chain == [("/", 302)]
    assert response.status_code == 200
    assert response.context["user"] == bob
    assert 'id="panel-today"' in response.content.decode()


def test_a_wrong_password_shows_an_error_and_no_session(client, bob):
    response = client.post("/accounts/login/", {"username": "bob", "password": "wrong"})
    assert response.status_code == 200
    html = response.content.decode()
    assert '<p class="error" role="alert">' in html
    assert "Your username and password didn't match" in html
    assert client.get("/").status_code == 302


def test_logging_out_is_a_post_and_ends_the_session(client, bob):
    client.force_login(bob)
    assert client.get("/accounts/logout/").status_code == 405
    assert client.get("/").status_code == 200

    response = client.post("/accounts/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/"
    assert client.get("/")["Location"] == "/accounts/login/?next=/"
