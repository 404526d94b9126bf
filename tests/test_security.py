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


def test_the_lock_is_per_username_and_address_and_ignores_case(client, bob, charlie):
    fail_logins(client, "BOB", 5, REMOTE_ADDR="10.0.0.1")
    assert log_in(client, "bob", REMOTE_ADDR="10.0.0.1").status_code == 429
    assert log_in(client, "charlie", REMOTE_ADDR="10.0.0.1").status_code == 302


def test_a_strangers_failures_elsewhere_do_not_lock_the_user_out(client, bob):
    """Anyone could lock any account from anywhere: now the lock is the pair
    (username, address), so the real user still signs in from their own address."""
    fail_logins(Client(), "bob", 5, REMOTE_ADDR="198.51.100.66")
    assert log_in(Client(), "bob", REMOTE_ADDR="198.51.100.66").status_code == 429
    assert log_in(client, "bob", REMOTE_ADDR="10.0.0.2").status_code == 302


def test_failures_spread_over_many_addresses_hit_the_per_username_ceiling(client, bob, settings):
    settings.LOGIN_FAILURE_CEILING = 12
    for n in range(3):  # 4 + 4 + 4 failures, never the limit from one address
        fail_logins(Client(), "bob", 4, REMOTE_ADDR=f"198.51.100.{n}")
    assert log_in(client, "bob", REMOTE_ADDR="10.0.0.2").status_code == 429


def test_signing_in_as_yourself_does_not_forgive_failures_against_another_name(client, alice, bob):
    """The bypass: 4 wrong passwords for one name, 1 right sign-in as yourself, repeat.
    A success clears only the signed-in username's failures, so the 5th wrong one locks."""
    statuses = []
    for _ in range(3):
        for _ in range(4):
            attempt = client.post("/accounts/login/", {"username": "alice", "password": "no"})
            statuses.append(attempt.status_code)
        assert log_in(client, "bob").status_code == 302
        client.post("/accounts/logout/")
    assert statuses[:5] == [200] * 5
    assert 429 in statuses
    assert log_in(client, "alice").status_code == 429


@pytest.mark.parametrize("typed", ["BOB", " bob ", "ｂｏｂ", "Bob"])
def test_the_lock_and_the_login_read_a_username_the_same_way(client, bob, typed):
    """Whatever spelling signs bob in is the spelling his lock counts, and back."""
    assert log_in(client, typed).status_code == 302  # the login matches it to bob
    client.post("/accounts/logout/")
    fail_logins(client, typed, 5)
    assert log_in(client, "bob").status_code == 429  # and the lock counted it as bob
    assert log_in(client, typed).status_code == 429


def test_the_lock_lifts_when_the_window_has_passed(client, bob):
    from datetime import timedelta

    from axes.models import AccessAttempt
    from django.utils import timezone

    fail_logins(client, "bob", 5)
    assert log_in(client, "bob").status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=15, seconds=1))

    assert log_in(client, "bob").status_code == 302


def test_a_success_resets_the_count(client, bob):
    fail_logins(client, "bob", 4)
    assert log_in(client, "bob").status_code == 302
    client.post("/accounts/logout/")
    fail_logins(client, "bob", 4)
    assert log_in(client, "bob").status_code == 302


def test_the_count_lives_in_the_database_for_every_process(bob):
    """Another browser (another server process) sees the same count."""
    from axes.models import AccessAttempt

    fail_logins(Client(), "bob", 5, REMOTE_ADDR="10.1.1.1")
    assert AccessAttempt.objects.get(username="bob").failures_since_start == 5
    assert log_in(Client(), "bob", REMOTE_ADDR="10.1.1.1").status_code == 429


def test_a_refused_attempt_is_not_counted_again(client, bob):
    """Hammering a locked form does not push the unlock time further out."""
    from axes.models import AccessAttempt

    fail_logins(client, "bob", 5)
    locked = AccessAttempt.objects.get()
    for _ in range(3):
        assert log_in(client, "bob").status_code == 429
    again = AccessAttempt.objects.get()
    assert (again.failures_since_start, again.attempt_time) == (5, locked.attempt_time)


def test_the_admin_login_counts_and_refuses_too(client, alice):
    for _ in range(5):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"})
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.text
    assert log_in(client, "alice").status_code == 429  # one count for both forms


@pytest.mark.parametrize("spelling", ["X-Forwarded-For", "HTTP_X_FORWARDED_FOR", "x-forwarded-for"])
def test_behind_a_proxy_the_configured_header_names_the_client(
    client, bob, settings, monkeypatch, spelling
):
    """The README's HTTP_X_FORWARDED_FOR and the header's own spelling both work."""
    from aimonitor.env import envheader

    monkeypatch.setenv("AIMONITOR_CLIENT_IP_HEADER", spelling)
    settings.CLIENT_IP_META_KEY = envheader("AIMONITOR_CLIENT_IP_HEADER")
    fail_logins(client, "bob", 5, headers={"X-Forwarded-For": "spoofed, 203.0.113.7"})
    proxied = {"headers": {"X-Forwarded-For": "203.0.113.8"}}
    assert log_in(client, "bob", **proxied).status_code == 302
    client.post("/accounts/logout/")
    blocked = {"headers": {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}}
    assert log_in(client, "bob", **blocked).status_code == 429


def test_a_header_value_that_is_not_an_address_is_no_address(rf, settings):
    from aimonitor.throttle import client_ip

    settings.CLIENT_IP_META_KEY = "HTTP_X_FORWARDED_FOR"
    for value in ("not-an-ip", "203.0.113.7, <script>", "bob", "1.2.3.4.5"):
        request = rf.get("/", HTTP_X_FORWARDED_FOR=value, REMOTE_ADDR="10.0.0.1")
        assert client_ip(request) is None, value
    request = rf.get("/", HTTP_X_FORWARDED_FOR="x, 2001:db8::1", REMOTE_ADDR="10.0.0.1")
    assert client_ip(request) == "2001:db8::1"


def test_a_header_setting_that_is_not_a_header_stops_start_up():
    result = production_check({"AIMONITOR_CLIENT_IP_HEADER": "X Forwarded: For"})
    assert result.returncode != 0
    assert "AIMONITOR_CLIENT_IP_HEADER" in result.stderr


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
