"""Failure groups per local hour: ``/failures/`` at ten million calls (SPEC.md §8).

The failures page groups a range's failures by (app_type, status, error signature).
Read raw, that is every failure of the range with its signature computed: linear in
the failures (about 230,000 in 7 days at ten million calls). Instead, the rollups'
refresh (``aimonitor.summaries.refresh``, the same statement, state and ``max_id``) sums
each closed hour's failures into ``FailureRollup`` — per hour, site, app type, status
and signature: count, first and last seen — and notes each summed
failure's group (a hash of app type, status and signature) in ``FailureCall``.

A range is read like the other rollups (``aimonitor.summaries.split``): closed hours from
``FailureRollup``, the open edges (the current hour, the part hours of a ``since``/
``until`` or 15m range) and the late calls (id above ``max_id``) raw. The newest
message is read from the calls created at the group's last_seen.

Pending alerts change all the time (acknowledged, ignored, reopened — by the console or
by anyone writing the table), yet the pending count is exact. Each ``FailureRollup`` row
keeps its pending count as last counted, and ``FailurePendingHour`` keeps, per hour and
site, a checksum of the pending alerts it was counted from (how many, and two sums of
hashes of their ids). A read computes the same checksum live from the pending-alerts
index (index-only, one aggregate) and takes the stored counts of every hour and site
whose checksum still matches; for the ones that changed it counts live, joining the
index with ``FailureCall``. The refresh adds the pending alerts of what it sums to both,
and the worker's pass (``count_pending``) counts the changed hours again, so a read
joins only what was triaged since the last pass.

Everything is exact, except what every rollup shares (a call changed or deleted after
its hour was summed is not re-read; ``manage.py rollup_runs --rebuild``) and what rests
on hashes: two groups of one range with the same 64-bit group hash would add their
pending counts together, and a changed set of pending alerts with the same count and
the same two id hashes (32 and 64 bits) would be taken for unchanged.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import connection, transaction

from aimonitor.models import (
    ALERT_STATUSES,
    FailureCall,
    FailurePendingHour,
    FailureRollup,
    RollupState,
    RunLog,
)
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


# The most hours and sites one count_pending() counts again (one statement, well within
# the statement timeout; after the migration, ten million calls have ~2,900 to count).
COUNT_AT_ONCE = 500
# The checksum of a set of pending alerts (FailurePendingHour's three columns).
CHECKSUM = (
    "count(*) AS pending, sum(hashint8(id)) AS id_sum, bit_xor(hashint8extended(id, 0)) AS id_xor"
)


def _fill(sql: str, **names: str) -> str:
    for name, value in names.items():
        sql = sql.replace("{" + name + "}", value)
    return sql


def _names(site_filter: str = "", **more: str) -> dict[str, str]:
    """The placeholders every section shares."""
    return {
        "runs": quoted_table(RunLog),
        "failure_rollup": quoted_table(FailureRollup),
        "failure_call": quoted_table(FailureCall),
        "pending_hour": quoted_table(FailurePendingHour),
        "signature": signature_sql("error_message"),
        "failed": FAILED,
        "checksum": CHECKSUM,
        "group_hash": group_hash("app_type", "status", "signature"),
        "site_filter": site_filter,
        **more,
    }


def _changed(names: dict[str, str]) -> str:
    """The statement of the changed (hour, site) pairs of a window %(a)s – %(b)s."""
    in_changed_sites = "AND site_id = ANY(ARRAY(SELECT site_id FROM changed_sites))"
    live = SQL["live_pending"]
    return _fill(
        SQL["changed"],
        live_per_site=_fill(live, by="site_id", group_by="site_id", **names),
        live_per_hour=_fill(
            live,
            by="date_trunc('hour', created_at, %(zone)s) AS hour, site_id",
            group_by="1, 2",
            **{**names, "site_filter": in_changed_sites},
        ),
        changed_sites=in_changed_sites,
        **names,
    )


def refresh_ctes() -> str:
    """The CTEs the rollups' refresh statement runs over its ``fresh`` calls."""
    return _fill(SQL["refresh"], **_names())


def forget() -> None:
    """Forget every summed failure (with the rollups' rebuild)."""
    FailureRollup.objects.all().delete()
    FailureCall.objects.all().delete()
    FailurePendingHour.objects.all().delete()


def count_pending(most: int = COUNT_AT_ONCE) -> tuple[int, int]:
    """Count again the pending alerts of the closed hours and sites whose alerts changed
    (acknowledged, ignored, reopened, removed) since they were last counted, the newest
    first, at most ``most`` of them: ``(counted, changed before)``.

    On the primary, with the rollups' state row locked (a refresh meanwhile skips its
    turn), so the counts and checksums move together with what the refresh adds.
    """
    names = _names()
    sql = _fill(
        SQL["sync"],
        changed=_changed(names),
        changed_pending=_fill(SQL["changed_pending"], **names),
        **names,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT covered_until, max_id FROM {quoted_table(RollupState)} WHERE id = 1 FOR UPDATE"
        )
        state = cursor.fetchone()
        if state is None or state[0] is None:
            return 0, 0
        # A new statement, a new snapshot: it sees what the refresh it waited for wrote.
        params = {
            "a": "-infinity",
            "b": state[0],
            "max_id": state[1],
            "most": most,
            "zone": _zone(),
        }
        cursor.execute(sql, params)
        counted, changed = cursor.fetchone()
        return counted, changed


def groups(
    scope: Scope,
    window: tuple,
    bins: list,
    limit: int,
    app_type: str | None = None,
    statuses: list[str] | None = None,
) -> list[tuple]:
    """The groups of failures created in ``window`` = (since, until), in scope.

    Rows ``(app_type, status, signature, count, pending, sites, first_seen, last_seen,
    newest message, counts)``, largest first, then newest last_seen; ``counts`` are the
    group's failures in each bin of hours, ``bins`` being the first hour of each (local
    hours, oldest first; the first one the hour of ``since``).
    """
    filters, site_filter = [], ""
    if not scope.is_all_sites:
        filters.append("AND site_id = ANY(%(sites)s)")
        site_filter = "AND site_id = ANY(%(sites)s)"
    if app_type:
        filters.append("AND app_type = %(f_app)s")
    filters.append("AND status = ANY(%(f_statuses)s)")
    names = _names(site_filter, filters=" ".join(filters))

    def build(query: _Query) -> str:
        query.params.update(
            limit=limit,
            bins=bins,
            f_app=app_type,
            f_statuses=list(statuses or ALERT_STATUSES),
        )
        # The closed hours' pending counts as last counted, corrected for the hours and
        # sites whose pending alerts no longer match them (counted again, live).
        summed = split(*window, query.state).hours
        if summed:
            query.group = "changed"
            query.add(_changed(names), a=summed[0], b=summed[1], max_id=query.state.max_id)
            query.group = "pending"
            correction = _fill(
                SQL["pending_correction"],
                changed_pending=_fill(SQL["changed_pending"], **names),
                **names,
            )
            query.add(correction, max_id=query.state.max_id)
        else:
            query.group = "changed"
            query.add(NO_CHANGES)
            query.group = "pending"
            query.add(NO_PENDING)
        query.group = "failures"
        query.windows(
            {"w": window},
            _fill(SQL["summed"], **names),
            _fill(SQL["raw"], **names, late=""),
            _fill(SQL["raw"], **names, late="AND id > %(w)s"),
        )
        return _fill(
            SQL["groups"],
            newest_signature=signature_sql("r.error_message"),
            newest_sites="" if scope.is_all_sites else "AND r.site_id = ANY(%(sites)s)",
            **names,
        )

    return _read(scope, build)


NO_CHANGES = (
    "SELECT NULL::timestamptz AS hour, NULL::bigint AS site_id, NULL::bigint AS pending, "
    "NULL::bigint AS id_sum, NULL::bigint AS id_xor WHERE false"
)
NO_PENDING = "SELECT NULL::bigint AS group_hash, 0::bigint AS n WHERE false"


def _zone() -> str:
    return str(settings.TIME_ZONE)  # read when used: tests override TIME_ZONE
