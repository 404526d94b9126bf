"""The shipped DDL of the AI tables and the check of a database against it."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import connection

from aimonitor.models import AI_MODELS

DDL_PATH = Path(__file__).with_name("ai_tables.sql")


def ddl(schema: str | None = None) -> str:
    return DDL_PATH.read_text().replace("{schema}", schema or settings.AI_SCHEMA)


def create_missing() -> None:
    """Apply the DDL; every statement is IF NOT EXISTS, so existing tables stay as they are."""
    with connection.cursor() as cursor:
        cursor.execute(ddl())


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
