"""Security settings that hold on every page: CSP, CSRF, safe redirects, cookies."""

import re
import subprocess
import sys

import pytest
from django.test import Client

from tests.conftest import PASSWORD


def test_csp_forbids_inline_scripts(client, db):
    response = client.get("/accounts/login/")
    policy = response.headers["Content-Security-Policy"]
    script_src = next(part for part in policy.split(";") if "script-src" in part)
    assert "'self'" in script_src
    assert "unsafe-inline" not in script_src
    assert "frame-ancestors 'none'" in policy


def test_login_requires_csrf_token(bob):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post("/accounts/login/", {"username": "bob", "password": PASSWORD})
    assert response.status_code == 403


def test_login_next_cannot_redirect_off_site(client, bob):
    response = client.post(
        "/accounts/login/?next=https://evil.example/steal",
        {"username": "bob", "password": PASSWORD, "next": "https://evil.example/steal"},
    )
    assert response.status_code == 302
    assert "evil.example" not in response["Location"]


def test_login_next_keeps_a_local_path(client, bob):
    response = client.post(
        "/accounts/login/", {"username": "bob", "password": PASSWORD, "next": "/alerts/"}
    )
    assert response["Location"] == "/alerts/"


def production_check(extra_env: dict) -> subprocess.CompletedProcess:
    env = {
        "PATH": "/usr/bin:/bin",
        "DJANGO_SECRET_KEY": "x" * 60 + "production-like-secret-key-for-the-check",
        "DJANGO_ALLOWED_HOSTS": "monitor.example.com",
        "DJANGO_HTTPS": "1",
        "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        **extra_env,
    }
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
    )


def test_check_deploy_is_clean_with_the_documented_production_settings():
    result = production_check({})
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_make_cookies_secure():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django, os; os.environ['DJANGO_SETTINGS_MODULE']='aimonitor.settings';"
            "from django.conf import settings as s;"
            "print(s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_SSL_REDIRECT)",
        ],
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SECRET_KEY": "k" * 60,
            "DJANGO_HTTPS": "1",
            "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
        },
        capture_output=True,
        text=True,
    )
    assert result.stdout.split() == ["True", "True", "True"], result.stderr


def test_malformed_setting_stops_start_up_naming_it():
    result = production_check({"AIMONITOR_DAILY_TOKEN_LIMIT": "lots"})
    assert result.returncode != 0
    assert "AIMONITOR_DAILY_TOKEN_LIMIT" in result.stderr


# --- Failed-login throttle ----------------------------------------------------------


def fail_logins(client, username: str, times: int, **extra):
    for _ in range(times):
        response = client.post(
            "/accounts/login/", {"username": username, "password": "wrong"}, **extra
        )
        assert response.status_code == 200, response.status_code


def log_in(client, username: str, **extra):
    return client.post(
        "/accounts/login/", {"username": username, "password": PASSWORD, "next": "/"}, **extra
    )


def test_five_failures_refuse_even_the_right_password_with_429(client, bob):
    fail_logins(client, "bob", 5)

    response = log_in(client, "bob")

    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert "Too many failed sign-in attempts. Try again in 15 minutes." in response.text
    assert "didn't match" not in response.text
    assert client.get("/").status_code == 302  # no session was opened


def test_four_failures_still_let_the_right_password_in(client, bob):
    fail_logins(client, "bob", 4)
    assert log_in(client, "bob").status_code == 302


def test_the_lock_is_per_username_and_ignores_case(client, bob, charlie):
    fail_logins(client, "BOB", 5, REMOTE_ADDR="10.0.0.1")
    assert log_in(client, "bob", REMOTE_ADDR="10.0.0.2").status_code == 429
    assert log_in(client, "charlie", REMOTE_ADDR="10.0.0.2").status_code == 302


def test_the_lock_is_per_client_address_across_usernames(client, bob, charlie):
    for name in ("x1", "x2", "x3", "x4", "x5"):
        fail_logins(client, name, 1, REMOTE_ADDR="10.0.0.9")
    assert log_in(client, "charlie", REMOTE_ADDR="10.0.0.9").status_code == 429
    assert log_in(client, "charlie", REMOTE_ADDR="10.0.0.10").status_code == 302


def test_the_lock_lifts_when_the_window_has_passed(client, bob):
    from datetime import timedelta

    from django.utils import timezone

    from aimonitor.models import LoginFailure

    fail_logins(client, "bob", 5)
    assert log_in(client, "bob").status_code == 429
    LoginFailure.objects.update(created_at=timezone.now() - timedelta(minutes=15, seconds=1))

    assert log_in(client, "bob").status_code == 302


def test_a_success_resets_the_count(client, bob):
    fail_logins(client, "bob", 4)
    assert log_in(client, "bob").status_code == 302
    client.post("/accounts/logout/")
    fail_logins(client, "bob", 4)
    assert log_in(client, "bob").status_code == 302


def test_the_count_lives_in_the_database_for_every_process(bob):
    """Another browser (another server process) sees the same count."""
    from aimonitor.models import LoginFailure

    fail_logins(Client(), "bob", 5, REMOTE_ADDR="10.1.1.1")
    assert LoginFailure.objects.filter(username="bob").count() == 5
    assert log_in(Client(), "bob", REMOTE_ADDR="10.2.2.2").status_code == 429


def test_a_refused_attempt_is_not_counted_again(client, bob):
    """Hammering a locked form does not push the unlock time further out."""
    from aimonitor.models import LoginFailure

    fail_logins(client, "bob", 5)
    for _ in range(3):
        assert log_in(client, "bob").status_code == 429
    assert LoginFailure.objects.count() == 5


def test_the_admin_login_counts_and_refuses_too(client, alice):
    for _ in range(5):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.text
    assert log_in(client, "alice").status_code == 429  # one count for both forms


def test_behind_a_proxy_the_configured_header_names_the_client(client, bob, settings):
    settings.CLIENT_IP_HEADER = "X-Forwarded-For"
    for name in ("y1", "y2", "y3", "y4", "y5"):
        fail_logins(client, name, 1, headers={"X-Forwarded-For": "spoofed, 203.0.113.7"})
    proxied = {"headers": {"X-Forwarded-For": "203.0.113.8"}}
    assert log_in(client, "bob", **proxied).status_code == 302
    client.post("/accounts/logout/")
    blocked = {"headers": {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}}
    assert log_in(client, "bob", **blocked).status_code == 429


# --- CSRF on every POST, CSP on every page ------------------------------------------

from tests.test_permission_matrix import (  # noqa: E402  (the matrix's world and rows)
    MATRIX,
    OWN,
    PANELS,
    Done,
    build_world,
    person,
)


@pytest.fixture
def matrix_world(db, settings):
    return build_world(settings)


POST_ROWS = [row for row in MATRIX if row.post is not None]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
INLINE_HANDLER = re.compile(r"<[^>]+\s(on[a-z]+|hx-on[:\w-]*)\s*=", re.I)


def strict_client(user) -> Client:
    strict = Client(enforce_csrf_checks=True)
    if user is not None:
        strict.force_login(user)
    strict.get("/accounts/login/")  # any form page sets the csrftoken cookie
    return strict


def post_data(row, client, world) -> dict:
    data = row.data(world, OWN) if row.data else {}
    if row.setup:
        data.update(row.setup(client, world, OWN))
    return data


def first_url(row, world) -> str:
    urls = row.url(world, OWN)
    url = urls if isinstance(urls, str) else urls[-1]
    return url.replace("{panel}", PANELS[0])


@pytest.mark.parametrize("row", POST_ROWS, ids=[row.route for row in POST_ROWS])
def test_every_post_without_the_csrf_token_is_refused(matrix_world, row):
    strict = strict_client(person("superuser"))
    response = strict.post(first_url(row, matrix_world), post_data(row, strict, matrix_world))
    assert response.status_code == 403
    assert "CSRF" in response.text
    if row.effect is not None:
        assert not row.effect(matrix_world, OWN)


@pytest.mark.parametrize("row", POST_ROWS, ids=[row.route for row in POST_ROWS])
def test_every_post_with_the_token_in_the_htmx_header_is_accepted(matrix_world, row):
    strict = strict_client(person("superuser"))
    token = strict.cookies["csrftoken"].value
    strict.defaults["HTTP_X_CSRFTOKEN"] = token  # the setup's own POSTs send it too, like htmx
    expected = row.post["superuser"]
    expected = expected[0] if isinstance(expected, tuple) else expected
    status = expected.status if isinstance(expected, Done) else expected

    response = strict.post(
        first_url(row, matrix_world),
        post_data(row, strict, matrix_world),
        headers={"X-CSRFToken": token, "HX-Request": "true", **row.headers},
    )

    assert response.status_code != 403 or status == 403
    assert response.status_code in (status, 200)  # HTMX may get the fragment instead
    if isinstance(expected, Done):
        assert row.effect(matrix_world, OWN)


GET_ROWS = [row for row in MATRIX if row.get["superuser"] not in (405,)]


def assert_strict_csp(response, where: str) -> None:
    policy = response.headers.get("Content-Security-Policy", "")
    directives = {part.split()[0]: part.split()[1:] for part in policy.split(";") if part.strip()}
    assert "script-src" in directives, f"{where}: no script-src in {policy!r}"
    assert "'unsafe-inline'" not in directives["script-src"], where
    assert "'unsafe-eval'" not in directives["script-src"], where
    assert directives.get("default-src") == ["'self'"], where


@pytest.mark.parametrize("row", GET_ROWS, ids=[row.route for row in GET_ROWS])
def test_every_page_has_a_csp_without_inline_scripts(client, matrix_world, row):
    client.force_login(person("superuser"))
    response = client.get(first_url(row, matrix_world), headers=row.headers)
    assert_strict_csp(response, row.route)
    if response.get("Content-Type", "").startswith("text/html"):
        html = response.text
        assert not INLINE_SCRIPT.search(html), f"{row.route}: an inline <script>"
        assert not INLINE_HANDLER.search(html), f"{row.route}: an inline event handler"


@pytest.mark.parametrize(
    ("path", "status"),
    [("/accounts/login/", 200), ("/no-such-page/", 404), ("/runs/999999/", 404), ("/batch/", 403)],
)
def test_login_and_error_pages_have_the_csp_too(client, matrix_world, path, status):
    if path != "/accounts/login/":
        client.force_login(person("viewer"))
    response = client.post(path) if path == "/batch/" else client.get(path)
    assert response.status_code == status
    assert_strict_csp(response, path)
    assert not INLINE_SCRIPT.search(response.text)
