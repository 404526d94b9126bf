"""Failure groups per local hour: ``/failures/`` at ten million calls (SPEC.md §8).

The failures page groups a range's failures by (app_type, status, error signature).
Read raw, that is every failure of the range with its signature computed: linear in
the failures (about 230,000 in 7 days at ten million calls). Instead, the rollups'
refresh (``aimonitor.summaries.refresh``, the same statement, state and ``max_id``) sums
each closed hour's failures into ``FailureRollup`` — per hour, site, app type, status
and signature: count, first and last seen, the newest call's id — and notes each summed
failure's group (a hash of app type, status and signature) in ``FailureCall``.

A range is read like the other rollups (``aimonitor.summaries.split``): closed hours from
``FailureRollup``, the open edges (the current hour, the part hours of a ``since``/
``until`` or 15m range) and the late calls (id above ``max_id``) raw. The newest
message is read by id. Alerts are acknowledged all the time, so the pending count is
read live: for closed hours the pending-alerts partial index (index-only) joined with
``FailureCall`` by (created_at, id), for the rest raw. Everything is exact, except
what every rollup shares (a call changed or deleted after its hour was summed is not
re-read; ``manage.py rollup_runs --rebuild``) and the 64-bit group hash (a collision
between two groups of one range would add their pending counts together).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.db import connections, transaction

from aimonitor.db_router import read_alias
from aimonitor.models import ALERT_STATUSES, FailureCall, FailureRollup, RunLog
from aimonitor.signature import signature_sql
from aimonitor.sqlfiles import sql_beside
from aimonitor.summaries.keeping import FAILED, quoted_table
from aimonitor.summaries.reading import _Query, _read, split

if TYPE_CHECKING:
    from aimonitor.scope import Scope


def _sections() -> dict[str, str]:
    """The named sections of failures.sql."""
    text = sql_beside(__file__, "failures.sql")
    parts = re.split(r"^-- name: (\w+)\n", text, flags=re.MULTILINE)
    return {name: body.strip() for name, body in zip(parts[1::2], parts[2::2], strict=True)}


SQL = _sections()


def group_hash(app_type: str, status: str, signature: str) -> str:
    """The SQL of a group's 64-bit hash over the three given expressions."""
    return f"hashtextextended({app_type} || E'\\n' || {status} || E'\\n' || {signature}, 0)"


def _fill(sql: str, **names: str) -> str:
    for name, value in names.items():
        sql = sql.replace("{" + name + "}", value)
    return sql


def refresh_ctes() -> str:
    """The CTEs the rollups' refresh statement runs over its ``fresh`` calls."""
    return _fill(
        SQL["refresh"],
        signature=signature_sql("error_message"),
        failed=FAILED,
        failure_rollup=quoted_table(FailureRollup),
        failure_call=quoted_table(FailureCall),
        group_hash=group_hash("app_type", "status", "signature"),
    )


def forget() -> None:
    """Forget every summed failure (with the rollups' rebuild)."""
    FailureRollup.objects.all().delete()
    FailureCall.objects.all().delete()


def groups(
    scope: Scope,
    window: tuple,
    limit: int,
    app_type: str | None = None,
    statuses: list[str] | None = None,
) -> list[tuple]:
    """The groups of failures created in ``window`` = (since, until), in scope.

    Rows ``(app_type, status, signature, count, pending, sites, first_seen, last_seen,
    newest message, hours, counts per hour)``, largest first, then newest last_seen.
    """
    runs = quoted_table(RunLog)
    filters, site_filter = [], ""
    if not scope.is_all_sites:
        filters.append("AND site_id = ANY(%(sites)s)")
        site_filter = "AND {}site_id = ANY(%(sites)s)"
    if app_type:
        filters.append("AND app_type = %(f_app)s")
    filters.append("AND status = ANY(%(f_statuses)s)")
    names = {
        "runs": runs,
        "failure_rollup": quoted_table(FailureRollup),
        "failure_call": quoted_table(FailureCall),
        "signature": signature_sql("error_message"),
        "failed": FAILED,
        "filters": " ".join(filters),
        "group_hash": group_hash("app_type", "status", "signature"),
    }

    def build(query: _Query) -> str:
        query.params.update(
            limit=limit, f_app=app_type, f_statuses=list(statuses or ALERT_STATUSES)
        )
        windows = {"w": window}
        query.group = "failures"
        query.windows(
            windows,
            _fill(SQL["summed"], **names),
            _fill(SQL["raw"], **names, late=""),
            _fill(SQL["raw"], **names, late="AND id > %(w)s"),
        )
        query.group = "pending"
        summed = split(*window, query.state).hours
        if summed:
            pending = _fill(SQL["summed_pending"], **names, site_filter=site_filter.format("r."))
            query.add(pending, a=summed[0], b=summed[1])
        else:
            query.add("SELECT NULL::bigint, 0")
        return _fill(SQL["groups"], runs=runs)

    alias = read_alias(FailureRollup)
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        # The pending count walks every pending alert of the range once, in (created_at,
        # id) order on both sides: a merge join. The planner underestimates the join and
        # would hand it to parallel workers, which cost more than they save here.
        cursor.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        return _read(scope, build)
