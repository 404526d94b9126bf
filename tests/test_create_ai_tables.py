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


def relkinds(schema):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, c.relkind FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind IN ('r', 'p')",
            [schema],
        )
        return dict(cursor.fetchall())


def test_partitioned_variant_is_created_checked_and_idempotent(db, ai_schema):
    call_command("create_ai_tables", "--partitioned", verbosity=0)
    call_command("create_ai_tables", "--partitioned", verbosity=0)
    out = io.StringIO()
    call_command("create_ai_tables", "--check", stdout=out)
    assert "match the contract" in out.getvalue()

    kinds = relkinds(SCHEMA)
    assert kinds["ai_run_logs"] == kinds["ai_trigger_jobs"] == "p"
    assert kinds["ai_cache"] == "r"
    for table in ("ai_run_logs", "ai_trigger_jobs"):
        months = [name for name in kinds if name.startswith(f"{table}_p")]
        assert len(months) == 16  # 13 months back, this month, 2 ahead
        assert f"{table}_default" in kinds
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY(i.indkey)"
            " WHERE n.nspname = %s AND c.relname = 'ai_run_logs' AND i.indisprimary"
            " ORDER BY array_position(i.indkey, a.attnum)",
            [SCHEMA],
        )
        assert [row[0] for row in cursor.fetchall()] == ["id", "created_at"]
        cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s", [SCHEMA])
        indexes = {row[0] for row in cursor.fetchall()}
        # The same indexes as the plain variant, on the parents (and so on every partition).
        assert {"ai_run_logs_alerts_idx", "ai_trigger_jobs_batch_idx"} <= indexes
        # Any created_at lands somewhere: a month's partition, else DEFAULT.
        cursor.execute(
            f"INSERT INTO {SCHEMA}.ai_run_logs (site_id, app_type, trigger_type, status, created_at)"
            " VALUES (1, 'a', 'event', 'success', now()), (1, 'a', 'event', 'success', '1999-01-01')"
            " RETURNING tableoid::regclass::text"
        )
        landed = sorted(row[0] for row in cursor.fetchall())
    assert landed[0].endswith("ai_run_logs_default") and "_p" in landed[1]


def test_partitioned_refuses_plain_tables_clearly(db, ai_schema):
    call_command("create_ai_tables", verbosity=0)
    with pytest.raises(CommandError) as error:
        call_command("create_ai_tables", "--partitioned", verbosity=0)
    assert "already exist as plain tables" in str(error.value)
