"""Reading a scope's windows from the rollups: the rollup hours, the raw edges and the
late calls of each window, summed in one statement (see the package's docstring).

Every function takes the ``aimonitor.scope.Scope`` whose calls it sums.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections

from aimonitor.db_router import read_alias
from aimonitor.models import RollupState, RunAppLatencyRollup, RunLatencyRollup, RunLog, RunRollup
from aimonitor.summaries import latency
from aimonitor.summaries.keeping import (
    FAILED,
    HOUR,
    NOTHING,
    REFRESHED,
    State,
    bucket_sql,
    local_hour_floor,
    quoted_table,
    refresh,
)

if TYPE_CHECKING:
    from aimonitor.scope import Scope


@dataclass(frozen=True)
class Split:
    """How a window [since, until) is read: rollup hours, raw ranges and late calls."""

    hours: tuple[dt.datetime, dt.datetime] | None
    raw: tuple[tuple[dt.datetime, dt.datetime], ...]
    late: tuple[dt.datetime, dt.datetime] | None


def split(since: dt.datetime, until: dt.datetime, state: State) -> Split:
    first_hour = local_hour_floor(since)
    if first_hour < since:
        first_hour += HOUR
    # Nothing summed yet: every call is read raw.
    covered = state.covered_until
    cut = first_hour if covered is None else min(local_hour_floor(until), covered)
    if cut <= first_hour:
        return Split(None, ((since, until),), None)
    raw = tuple(r for r in ((since, first_hour), (cut, until)) if r[0] < r[1])
    return Split((first_hour, cut), raw, (first_hour, cut))


ROLLUP_KEYS = {
    "window": "%(key)s",
    "day": "(hour AT TIME ZONE %(zone)s)::date",
    "app": "app_type",
    "site_app": "site_id::text || ' ' || app_type",  # "<site> <app type>" (/metrics)
}
RAW_KEYS = {
    "window": "%(key)s",
    "day": "(created_at AT TIME ZONE %(zone)s)::date",
    "app": "app_type",
    "site_app": "site_id::text || ' ' || app_type",
}
SUMS = (
    "calls",
    "successes",
    "failures",
    "tokens",
    "success_tokens",
    "latency_sum",
    "latency_count",
)
RAW_SUMS = f"""count(*), count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE {FAILED}),
    coalesce(sum(tokens_used), 0), coalesce(sum(tokens_used) FILTER (WHERE status = 'success'), 0),
    coalesce(sum(latency_ms), 0), count(latency_ms)"""


class _Query:
    """One statement built of UNION ALL parts, each with its own named parameters."""

    def __init__(self, state: State, scope: Scope, alias: str = DEFAULT_DB_ALIAS):
        self.state = state
        self.alias = alias
        self.parts: dict[str, list[str]] = {}
        self.group = "parts"
        self.params: dict = {
            "zone": str(settings.TIME_ZONE),
            "sites": scope.site_id_list,
            "planned_until": state.covered_until,
            "planned_max": state.max_id,
        }
        self.site_clause = "" if scope.is_all_sites else "AND site_id = ANY(%(sites)s)"

    def add(self, template: str, **params) -> None:
        n = sum(len(parts) for parts in self.parts.values())
        for name, value in params.items():
            template = template.replace(f"%({name})s", f"%({name}_{n})s")
            self.params[f"{name}_{n}"] = value
        self.parts.setdefault(self.group, []).append(template)

    def windows(self, windows: dict[str, tuple], rollup_part: str, raw_part: str, late_part: str):
        for key, (since, until) in windows.items():
            how = split(since, until, self.state)
            if how.hours:
                a, b = how.hours
                days = latency.whole_days(a, b, self.state.covered_until)
                self.add(rollup_part, key=key, a=a, b=b, **days)
            for a, b in how.raw:
                self.add(raw_part, key=key, a=a, b=b)
            if how.late:
                self.add(late_part, key=key, a=how.late[0], b=how.late[1], w=self.state.max_id)

    def run(self, outer: str) -> list[tuple] | None:
        """Rows of ``outer`` over the parts, or None when the rollups moved meanwhile."""
        sql = outer.format(**{group: "\nUNION ALL\n".join(p) for group, p in self.parts.items()})
        # Planned with one state; in the same snapshot, check it still holds (else a
        # concurrent refresh may have moved late calls into the rollups: read again).
        sql = f"""WITH checked AS (
            SELECT covered_until IS NOT DISTINCT FROM %(planned_until)s
                   AND max_id = %(planned_max)s AS same
            FROM {quoted_table(RollupState)} WHERE id = 1
        ) SELECT q.*, coalesce((SELECT same FROM checked), %(nothing_planned)s)
          FROM ({sql}) q"""
        self.params["nothing_planned"] = self.state.covered_until is None
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, self.params)
            rows = cursor.fetchall()
        if rows and not all(row[-1] for row in rows) and self.state.covered_until is not None:
            return None
        return [row[:-1] for row in rows]


def _read(scope: Scope, build) -> list[tuple]:
    """Refresh, then read; again if a concurrent refresh changed the rollups meanwhile.

    ``build(query)`` adds the parts to ``query`` and returns the outer statement.
    The refresh writes on the primary; the read goes where the router sends it. On a
    replica the rollups and their state are those the replica has replayed so far,
    consistent with its calls: the plan takes the state from there.
    """
    alias = read_alias(RunRollup)
    state = REFRESHED.get()
    for _ in range(3):
        state = state or refresh()
        if alias != DEFAULT_DB_ALIAS:
            state = replica_state(alias)
        query = _Query(state, scope, alias)
        rows = query.run(build(query))
        if rows is not None:
            return rows
        state = None
    query = _Query(NOTHING, scope, alias)  # every call read raw: always consistent
    return query.run(build(query))


def replica_state(alias: str) -> State:
    """The rollups' state as the database ``alias`` (a replica) has it now."""
    with connections[alias].cursor() as cursor:
        cursor.execute(
            f"SELECT covered_until, max_id FROM {quoted_table(RollupState)} WHERE id = 1"
        )
        row = cursor.fetchone()
    return State(row[0], row[1] or 0) if row else NOTHING


def _add_sums(query: _Query, windows: dict[str, tuple], by: str) -> str:
    """Add the sum parts of ``windows`` to ``query``; the statement that totals them."""
    runs, rollup = quoted_table(RunLog), quoted_table(RunRollup)
    query.group = "sums"
    query.windows(
        windows,
        f"""SELECT {ROLLUP_KEYS[by]} AS key, {", ".join(f"sum({s})" for s in SUMS)}
            FROM {rollup} WHERE hour >= %(a)s AND hour < %(b)s {query.site_clause}
            GROUP BY 1""",
        f"""SELECT {RAW_KEYS[by]} AS key, {RAW_SUMS}
            FROM {runs} WHERE created_at >= %(a)s AND created_at < %(b)s {query.site_clause}
            GROUP BY 1""",
        f"""SELECT {RAW_KEYS[by]} AS key, {RAW_SUMS}
            FROM {runs} WHERE id > %(w)s AND created_at >= %(a)s AND created_at < %(b)s
            {query.site_clause} GROUP BY 1""",
    )
    return f"""SELECT key, {", ".join(f"sum({s})::bigint" for s in SUMS)}
        FROM ({{sums}}) parts (key, {", ".join(SUMS)}) GROUP BY key"""


def _add_latencies(query: _Query, windows: dict[str, tuple], by: str = "window") -> str:
    """Add the latency-bucket parts of ``windows`` (keyed by window, or by app type with
    ``by="app"``); the statement that merges them."""
    runs, bucket = quoted_table(RunLog), bucket_sql("latency_ms")
    if by == "app":
        hours, key = quoted_table(RunAppLatencyRollup), "app_type"
    else:
        hours, key = quoted_table(RunLatencyRollup), "%(key)s"
    query.group = "latencies"
    query.windows(
        windows,
        latency.rollup_part(key, hours, query.site_clause),
        f"""SELECT {key}, {bucket}, count(*), min(latency_ms), max(latency_ms)
            FROM {runs} WHERE created_at >= %(a)s AND created_at < %(b)s
            AND latency_ms IS NOT NULL {query.site_clause} GROUP BY 1, 2""",
        f"""SELECT {key}, {bucket}, count(*), min(latency_ms), max(latency_ms)
            FROM {runs} WHERE id > %(w)s AND created_at >= %(a)s AND created_at < %(b)s
            AND latency_ms IS NOT NULL {query.site_clause} GROUP BY 1, 2""",
    )
    return """SELECT key::text, bucket, sum(calls)::bigint, min(lo), max(hi)
        FROM ({latencies}) parts (key, bucket, calls, lo, hi) GROUP BY key, bucket"""


def _sums_of(rows) -> dict:
    return {row[0]: dict(zip(SUMS, row[1:], strict=True)) for row in rows}


def _percentiles_of(rows, windows, fraction: float) -> dict[str, float | None]:
    buckets: dict[str, list[tuple[int, int, int]]] = {key: [] for key in windows}
    for key, _bucket, calls, lo, hi in sorted(rows, key=lambda row: (row[0], row[1])):
        buckets.setdefault(key, []).append((calls, lo, hi))
    return {key: percentile(rows, fraction) for key, rows in buckets.items()}


def sums(scope: Scope, windows: dict[str, tuple], by: str = "window") -> dict:
    """``{key: {calls, successes, tokens, success_tokens, latency_sum, latency_count}}``.

    Keys are the window names (``by="window"``), the local days (``"day"``) or the
    app types (``"app"``) of the calls in the windows.
    """
    return _sums_of(_read(scope, lambda query: _add_sums(query, windows, by)))


def latency_percentiles(
    scope: Scope, windows: dict[str, tuple], fraction: float
) -> dict[str, float | None]:
    """``{window: the latency at ``fraction`` (like percentile_cont), None if no latency}``."""
    rows = _read(scope, lambda query: _add_latencies(query, windows))
    return _percentiles_of(rows, windows, fraction)


def _sums_and_buckets(scope: Scope, windows: dict[str, tuple], by: str) -> tuple[dict, list]:
    """The sums and the latency buckets ``(key, bucket, calls, min, max)`` of ``windows``
    (keyed by window, or by app type with ``by="app"``), read in one statement."""

    def build(query: _Query) -> str:
        totals, latencies = _add_sums(query, windows, by), _add_latencies(query, windows, by)
        return f"""SELECT 's', key::text, NULL::int, {", ".join(SUMS)}
            FROM ({totals}) t (key, {", ".join(SUMS)})
            UNION ALL
            SELECT 'l', key, bucket, calls, lo, hi, NULL, NULL, NULL, NULL
            FROM ({latencies}) l (key, bucket, calls, lo, hi)"""

    rows = _read(scope, build)
    totals = _sums_of(row[1:2] + row[3:] for row in rows if row[0] == "s")
    return totals, [row[1:6] for row in rows if row[0] == "l"]


def apps_in_window(
    scope: Scope, window: tuple, fraction: float
) -> tuple[dict, dict[str, float | None], dict, float | None]:
    """Per app type in ``window``: its sums and its latency at ``fraction``; and the same
    for all of them together (every call has an app type, NULL included, so the apps'
    sums and latency buckets add up to the window's). One statement."""
    per_app, buckets = _sums_and_buckets(scope, {"w": window}, "app")
    total = {name: sum(sums[name] for sums in per_app.values()) for name in SUMS}
    merged: dict[int, tuple[int, int, int]] = {}
    for _app, bucket, calls, lo, hi in buckets:
        if bucket in merged:
            before = merged[bucket]
            merged[bucket] = (before[0] + calls, min(before[1], lo), max(before[2], hi))
        else:
            merged[bucket] = (calls, lo, hi)
    all_apps = percentile([merged[bucket] for bucket in sorted(merged)], fraction)
    return per_app, _percentiles_of(buckets, {}, fraction), total, all_apps


def sums_and_percentiles(
    scope: Scope, windows: dict[str, tuple], fraction: float
) -> tuple[dict, dict[str, float | None]]:
    """``sums(scope, windows)`` and ``latency_percentiles(...)`` in one statement."""
    totals, buckets = _sums_and_buckets(scope, windows, "window")
    return totals, _percentiles_of(buckets, windows, fraction)


def percentile(buckets: list[tuple[int, int, int]], fraction: float) -> float | None:
    """``percentile_cont(fraction)`` over values given as ordered (count, min, max) buckets.

    The k-th value is exact when its bucket holds one distinct value (or it is the
    bucket's first or last); otherwise it is placed evenly between the bucket's ends.
    """
    total = sum(count for count, _, _ in buckets)
    if not total:
        return None

    def value(rank: int) -> float:
        for count, lo, hi in buckets:
            if rank < count:
                return float(lo) if count == 1 else lo + (hi - lo) * rank / (count - 1)
            rank -= count
        raise IndexError(rank)

    position = fraction * (total - 1)
    low = math.floor(position)
    result = value(low)
    if position > low:
        result += (position - low) * (value(low + 1) - result)
    return result


def mean(total, count) -> float | None:
    """``total / count`` like PostgreSQL's avg (None when there is nothing)."""
    return float(Decimal(total) / Decimal(count)) if count else None
