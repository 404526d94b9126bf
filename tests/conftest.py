"""Shared fixtures: people named by role and site, and factories for AI-table rows.

- alice: admin role, sites 1 and 2 (the Django admin, batch runs, prompts)
- bob: operator of site 1
- charlie: viewer of site 2
- root: superuser (every site)
"""

from __future__ import annotations

import datetime as dt
import itertools
import os

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from aimonitor.models import CacheEntry, RunLog, SiteAccess, TriggerJob
from aimonitor.roles import sync_role_groups

PASSWORD = "correct horse battery staple"
# AIMONITOR_TEST_PARTITIONED=1: the session's AI tables are the partitioned variant
# (create_ai_tables --partitioned), so the same tests prove both (make test-partitioned).
PARTITIONED = os.environ.get("AIMONITOR_TEST_PARTITIONED") == "1"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are made with a cheap hash (tests/hashers.py); every test creates some."""
    settings.PASSWORD_HASHERS = [
        "tests.hashers.FastPBKDF2PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database gets the AI tables from the shipped DDL (plain or partitioned)."""
    with django_db_blocker.unblock():
        call_command("create_ai_tables", verbosity=0, partitioned=PARTITIONED)


@pytest.fixture(autouse=True)
def _transactional_test_hygiene(request):
    """Transactional tests (real commits, threads, live server) need two repairs.

    Django flushes the console's tables after each such test, which also empties the
    role groups the 0002 migration created: put them back before the test runs. And
    the flush skips unmanaged tables, so the AI tables are emptied here afterwards.
    """
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if not transactional:
        yield
        return
    request.getfixturevalue("transactional_db")
    sync_role_groups(Group, Permission)
    yield
    with connection.cursor() as cursor:
        tables = ", ".join(f'"{m._meta.db_table}"' for m in (RunLog, TriggerJob, CacheEntry))
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY")


def make_user(username: str, role: str | None, sites=(), all_sites=False, **extra):
    user = get_user_model().objects.create_user(username, password=PASSWORD, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
        user.is_staff = role == "admin"
        user.save()
        SiteAccess.objects.create(user=user, site_ids=list(sites), all_sites=all_sites)
    return user


@pytest.fixture
def alice(db):
    return make_user("alice", "admin", sites=[1, 2])


@pytest.fixture
def bob(db):
    return make_user("bob", "operator", sites=[1])


@pytest.fixture
def charlie(db):
    return make_user("charlie", "viewer", sites=[2])


@pytest.fixture
def root(db):
    return get_user_model().objects.create_superuser("root", password=PASSWORD)


def client_for(client, user):
    client.force_login(user)
    return client


_ids = itertools.count(1)


def make_run(**fields) -> RunLog:
    values = {
        "site_id": 1,
        "app_type": "app1_chat",
        "trigger_type": "event",
        "member_id": 1000 + next(_ids),
        "request_prompt": "the prompt",
        "response_text": "the response",
        "tokens_used": 100,
        "latency_ms": 500,
        "status": "success",
        "created_at": timezone.now(),
    }
    values.update(fields)
    return RunLog.objects.create(**values)


def make_job(**fields) -> TriggerJob:
    values = {
        "site_id": 1,
        "event_type": "consumption",
        "member_id": 2000 + next(_ids),
        "payload": {"amount": 10},
        "app_chain": "app3_clue,app2_summary",
        "status": "success",
        "created_at": timezone.now(),
    }
    values.update(fields)
    return TriggerJob.objects.create(**values)


def make_cache(**fields) -> CacheEntry:
    values = {
        "site_id": 1,
        "cache_type": "app3_clue",
        "target_id": str(3000 + next(_ids)),
        "result_json": {"score": 1},
        "status": "valid",
        "created_at": timezone.now(),
        "expires_at": timezone.now() + dt.timedelta(days=7),
    }
    values.update(fields)
    return CacheEntry.objects.create(**values)
