"""Notification settings from the environment, and Django kept on psycopg2 beside
procrastinate's psycopg 3."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parent.parent


def load_settings(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import aimonitor.settings as s; print(s.EMAIL_BACKEND if hasattr(s, 'EMAIL_BACKEND') else '-', s.WORKER_INTERVAL_SECONDS, s.NOTIFY_LANGUAGE)",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": "postgres://u@127.0.0.1:1/x", **env},
        capture_output=True,
        text=True,
    )


@pytest.mark.parametrize(
    "name,value",
    [
        ("AIMONITOR_WORKER_INTERVAL_SECONDS", "7"),
        ("AIMONITOR_WORKER_INTERVAL_SECONDS", "0"),
        ("AIMONITOR_WORKER_INTERVAL_SECONDS", "soon"),
        ("AIMONITOR_NOTIFY_LANGUAGE", "klingon"),
        ("EMAIL_URL", "smtp://host:notaport/"),
    ],
)
def test_malformed_values_stop_start_up_naming_them(name, value):
    done = load_settings(**{name: value})
    assert done.returncode != 0
    assert name in done.stderr


def test_defaults_and_email_url():
    done = load_settings(DJANGO_DEBUG="1")
    assert done.stdout.split() == [
        "django.core.mail.backends.console.EmailBackend",
        "60",
        "zh-hans",
    ]
    done = load_settings(
        EMAIL_URL="smtp://a:b@smtp.example.com:587/?tls=True",
        AIMONITOR_WORKER_INTERVAL_SECONDS="300",
    )
    assert done.stdout.split() == ["django.core.mail.backends.smtp.EmailBackend", "300", "zh-hans"]


def test_django_stays_on_psycopg2_while_psycopg3_is_installed():
    import psycopg

    assert psycopg.__version__.startswith("3.")
    assert connection.Database.__name__ == "psycopg2"
