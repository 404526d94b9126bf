"""The shipped DDL of the AI tables and the check of a database against it."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.utils import timezone

from aimonitor.models import AI_MODELS

DDL_PATH = Path(__file__).with_name("ai_tables.sql")
PARTITIONED_DDL_PATH = Path(__file__).with_name("ai_tables_partitioned.sql")
# The tables of the partitioned variant, and the months they get partitions for.
PARTITIONED_TABLES = ("ai_run_logs", "ai_trigger_jobs")
MONTHS_BACK, MONTHS_AHEAD = 13, 2


class NotPartitionable(Exception):
    """A table of the partitioned variant already exists as a plain table."""


def ddl(schema: str | None = None, path: Path = DDL_PATH) -> str:
    return path.read_text().replace("{schema}", schema or settings.AI_SCHEMA)


def create_missing(partitioned: bool = False) -> None:
    """Apply the DDL; every statement is IF NOT EXISTS, so existing tables stay as they are.

    ``partitioned``: ``ai_run_logs`` and ``ai_trigger_jobs`` are created partitioned by
    month (``ai_tables_partitioned.sql``) with their monthly partitions, then the
    plain DDL adds the third table and every index.
    """
    with connection.cursor() as cursor:
        if partitioned:
            plain = [t for t in PARTITIONED_TABLES if relkind(t) == "r"]
            if plain:
                raise NotPartitionable(
                    f"{', '.join(plain)} already exist as plain tables; moving their rows "
                    "into a partitioned table is the AI service's migration (docs/SCALING.md)."
                )
            cursor.execute(ddl(path=PARTITIONED_DDL_PATH))
            cursor.execute(partitions_ddl())
        cursor.execute(ddl())


def relkind(table: str, schema: str | None = None) -> str | None:
    """``r`` (plain table), ``p`` (partitioned) or None (absent)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = %s AND c.relname = %s",
            [schema or settings.AI_SCHEMA, table],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def month_starts(now: dt.datetime | None = None, back=MONTHS_BACK, ahead=MONTHS_AHEAD):
    """The starts of the local months from ``back`` before ``now``'s to ``ahead`` after, and one more."""
    zone = zoneinfo.ZoneInfo(str(settings.TIME_ZONE))
    local = timezone.localtime(now or timezone.now(), zone)
    first = local.year * 12 + local.month - 1 - back
    return [
        dt.datetime(m // 12, m % 12 + 1, 1, tzinfo=zone)
        for m in range(first, first + back + ahead + 2)
    ]


def partitions_ddl(schema: str | None = None, now: dt.datetime | None = None) -> str:
    """One partition per local month (MONTHS_BACK before now to MONTHS_AHEAD after) and DEFAULT.

    Run again (e.g. monthly, by cron) it adds the months that came into range. Rows
    outside every month land in the DEFAULT partition; a month cannot be added once
    the DEFAULT partition holds rows of it (move them out first).
    """
    schema = schema or settings.AI_SCHEMA
    starts = month_starts(now)
    statements = []
    for table in PARTITIONED_TABLES:
        for start, end in zip(starts, starts[1:], strict=False):
            statements.append(
                f"CREATE TABLE IF NOT EXISTS {schema}.{table}_p{start:%Y_%m} PARTITION OF "
                f"{schema}.{table} FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}');"
            )
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {schema}.{table}_default PARTITION OF {schema}.{table} DEFAULT;"
        )
    return "\n".join(statements)


def expected_columns() -> dict[str, list[str]]:
    """``{table: [column, ...]}`` the console reads, taken from the models."""
    return {
        model._meta.db_table.split('"."')[-1]: [f.column for f in model._meta.concrete_fields]
        for model in AI_MODELS
    }


def missing_parts(schema: str | None = None) -> list[str]:
    """Every table or column of the contract absent from the database, as text."""
    schema = schema or settings.AI_SCHEMA
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = %s",
            [schema],
        )
        present: dict[str, set[str]] = {}
        for table, column in cursor.fetchall():
            present.setdefault(table, set()).add(column)
    problems = []
    for table, columns in expected_columns().items():
        if table not in present:
            problems.append(f"missing table {schema}.{table}")
            continue
        problems.extend(
            f"missing column {schema}.{table}.{column}"
            for column in columns
            if column not in present[table]
        )
    return problems
