"""Distinct values of an indexed column without reading the whole table."""

from __future__ import annotations

from aimonitor.db_router import reading


def distinct_values(model, column: str) -> list:
    """Every distinct non-null value of ``column``, ascending, by a loose index scan.

    PostgreSQL has no skip scan: ``SELECT DISTINCT`` reads every row. This recursive
    query asks the index for "the next value after the last one" instead — one index
    probe per distinct value, so a handful of sites or app types over ten million
    rows costs a few milliseconds. ``column`` must lead an index of the table.
    """
    table = model._meta.db_table
    name = model._meta.get_field(column).column  # a real column, never user input
    with reading(model).cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE found AS (
                (SELECT "{name}" AS value FROM "{table}" WHERE "{name}" IS NOT NULL
                 ORDER BY "{name}" LIMIT 1)
                UNION ALL
                SELECT (SELECT "{name}" FROM "{table}" WHERE "{name}" > found.value
                        ORDER BY "{name}" LIMIT 1)
                FROM found WHERE found.value IS NOT NULL
            )
            SELECT value FROM found WHERE value IS NOT NULL
            """
        )
        return [row[0] for row in cursor.fetchall()]


def distinct_values_in_sites(model, column: str, site_ids: list[int] | None) -> list:
    """``distinct_values`` of ``column`` among the rows of ``site_ids`` (None: every site).

    The same loose index scan, once per site, over an index leading with
    ``(site_id, column)``: a probe per site and distinct value.
    """
    if site_ids is None:
        site_ids = distinct_values(model, "site_id")
    table = model._meta.db_table
    name = model._meta.get_field(column).column
    with reading(model).cursor() as cursor:
        cursor.execute(
            f"""
            WITH RECURSIVE found(site_id, value) AS (
                SELECT sites.site_id,
                       (SELECT "{name}" FROM "{table}" WHERE site_id = sites.site_id
                          AND "{name}" IS NOT NULL ORDER BY "{name}" LIMIT 1)
                FROM unnest(%s::bigint[]) AS sites(site_id)
                UNION ALL
                SELECT found.site_id,
                       (SELECT "{name}" FROM "{table}" WHERE site_id = found.site_id
                          AND "{name}" > found.value ORDER BY "{name}" LIMIT 1)
                FROM found WHERE found.value IS NOT NULL
            )
            SELECT DISTINCT value FROM found WHERE value IS NOT NULL ORDER BY value
            """,
            [list(site_ids)],
        )
        return [row[0] for row in cursor.fetchall()]
