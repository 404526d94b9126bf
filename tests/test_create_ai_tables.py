"""create_ai_tables: creates what is missing; --check names every missing part."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

SCHEMA = "damaged_check"


@pytest.fixture
def ai_schema(settings):
    """A separate schema for the AI tables, so damage stays out of the shared one."""
    settings.AI_SCHEMA = SCHEMA
    yield SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def test_check_passes_on_the_shipped_tables(db):
    out = io.StringIO()
    call_command("create_ai_tables", "--check", stdout=out)
    assert "match the contract" in out.getvalue()


def test_check_on_empty_schema_names_every_table_and_changes_nothing(db, ai_schema):
    with pytest.raises(CommandError) as error:
        call_command("create_ai_tables", "--check")
    for table in ("ai_run_logs", "ai_trigger_jobs", "ai_cache"):
        assert f"missing table {SCHEMA}.{table}" in str(error.value)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.schemata WHERE schema_name = %s", [SCHEMA]
        )
        assert cursor.fetchone()[0] == 0


def test_check_names_a_missing_column(db, ai_schema):
    call_command("create_ai_tables", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {SCHEMA}.ai_run_logs DROP COLUMN alert_status")
        cursor.execute(f"ALTER TABLE {SCHEMA}.ai_cache DROP COLUMN expires_at")
    with pytest.raises(CommandError) as error:
        call_command("create_ai_tables", "--check")
    message = str(error.value)
    assert f"missing column {SCHEMA}.ai_run_logs.alert_status" in message
    assert f"missing column {SCHEMA}.ai_cache.expires_at" in message
    assert "ai_trigger_jobs" not in message


def test_create_is_idempotent_and_builds_indexes(db, ai_schema):
    call_command("create_ai_tables", verbosity=0)
    call_command("create_ai_tables", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", [SCHEMA])
        indexes = {row[0] for row in cursor.fetchall()}
    assert {
        "ai_run_logs_created_idx",
        "ai_run_logs_site_created_idx",
        "ai_run_logs_alerts_idx",
    } <= indexes
