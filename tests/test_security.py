"""Security settings that hold on every page: CSP, CSRF, safe redirects, cookies."""

import subprocess
import sys

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
