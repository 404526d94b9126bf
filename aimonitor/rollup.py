"""Rollups of ``ai_run_logs``: the dashboard's figures stay instant at ten million calls.

The figures over days (today, the 7-day trend and app distribution, the monthly
budget) would otherwise read every call of their window: millions of rows, every
30 seconds, for every operator. Instead, each closed local hour is summed once into
``RunRollup`` (calls, successes, tokens, latency sum and count per hour, site and
app type) and ``RunLatencyRollup`` (latencies in buckets 2 % wide per hour and site),
and a figure over the window [A, B) reads

    the rollups' hours in [A, cut)                     (a few hundred small rows)
  + the raw calls created in [cut, B)                  (the current hour or so)
  + the raw calls created in [A, cut) with id > max_id (late arrivals, by primary key)

where ``cut`` is where the rollups stop: the state row (``RollupState``) says they
hold exactly the calls created before ``covered_until`` whose id is at most
``max_id``. So every call is counted exactly once, including a call that reaches
the table after its hour was summed: its id is larger, it is read raw until the
next refresh adds it to its hour.

``refresh()`` runs, as one statement, before each figure: it closes the hours that
ended ``GRACE`` ago (a call's row may still be updated, e.g. from ``running``, just
after its hour) and adds the late calls. Ids are adopted ``LAG`` after they were
first seen, so a row whose id was taken by a transaction still open at the refresh
is not skipped. What is not exact: a call changed or deleted after its hour was
summed is not re-read (``manage.py rollup_runs --rebuild`` recomputes everything),
and p95 is read from the buckets: exact when the ranks it needs fall in buckets
of one distinct value, otherwise interpolated within a bucket (within 2 %).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections, transaction
from django.db.models.lookups import Exact, In
from django.utils import timezone

from aimonitor.db_router import read_alias
from aimonitor.models import (
    ALERT_STATUSES,
    RollupState,
    RunAppLatencyRollup,
    RunLatencyRollup,
    RunLog,
    RunRollup,
)
from aimonitor.summaries import latency

logger = logging.getLogger(__name__)

# An hour is summed once it ended this long ago (rows may still be updated just after).
GRACE = dt.timedelta(minutes=5)
# An observed id is adopted this many seconds later (transactions open longer are rare).
LAG_SECONDS = 60
# Latency buckets: bucket b >= 0 holds [1.02^b - 1, 1.02^(b+1) - 1) ms; bucket -1 - b
# the negative latencies (clock skew) of the same magnitude.
BUCKET_RATIO = 1.02
HOUR = dt.timedelta(hours=1)
# The most one request's refresh sums: hours closed, and ids adopted.
STEP_HOURS = 6
STEP_IDS = 200_000


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


FAILED = "status IN ({})".format(", ".join(f"'{status}'" for status in ALERT_STATUSES))


def _bucket_sql(column: str) -> str:
    """The latency bucket of ``column``; negative latencies (clock skew) mirror the positive
    ones below bucket 0, so a percentile among them is as close as among the others.

    In float8: ``2147483647 + 1`` (the largest integer, which the contract allows) would
    overflow integer arithmetic.
    """
    magnitude = f"floor(ln(abs({column}::float8) + 1) / ln({BUCKET_RATIO}))::int"
    return f"CASE WHEN {column} < 0 THEN -1 - {magnitude} ELSE {magnitude} END"


@dataclass(frozen=True)
class State:
    covered_until: dt.datetime | None  # None: nothing summed yet
    max_id: int


NOTHING = State(None, 0)
# Set by refreshed(): the state a block of figures reads with (one refresh, not one each).
_refreshed: ContextVar[State | None] = ContextVar("rollup_state", default=None)


# --- Keeping the rollups -----------------------------------------------------------

REFRESH_SQL = """
WITH created AS (
    INSERT INTO {state} (id, max_id, seen_id) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING
), state AS (
    -- SKIP LOCKED: while another request refreshes, this one reads the state as it was.
    SELECT covered_until, max_id, seen_id, seen_at FROM {state} WHERE id = 1
    FOR UPDATE SKIP LOCKED
), observed AS (
    SELECT coalesce(max(id), 0) AS newest, coalesce(min(id), 1) AS oldest, now() AS now
    FROM {runs}
), stepped AS (
    -- A first refresh only places covered_until (nothing is summed while max_id is 0);
    -- the calls before it are then summed by id, step by step. Steps are bounded
    -- (NULL: unbounded, for the command), so a request never sums a whole table.
    SELECT
        state.covered_until AS old_until,
        state.max_id AS old_max,
        observed.newest < state.max_id AS shrunk,
        CASE WHEN observed.newest < state.max_id OR state.covered_until >= %(until)s
                 THEN state.covered_until
             WHEN state.covered_until IS NULL THEN %(until)s
             ELSE least(%(until)s, state.covered_until + %(step_hours)s * interval '1 hour')
        END AS new_until,
        CASE WHEN observed.newest < state.max_id OR state.covered_until IS NULL
                 THEN state.max_id
             ELSE least(
                 CASE WHEN %(lag)s = 0 THEN observed.newest
                      WHEN state.seen_at <= observed.now - %(lag)s * interval '1 second'
                          THEN greatest(state.max_id, state.seen_id)
                      ELSE state.max_id END,
                 greatest(state.max_id, observed.oldest - 1) + %(step_ids)s)
        END AS new_max,
        state.seen_id AS old_seen,
        state.seen_at AS old_seen_at,
        state.seen_at IS NULL
            OR state.seen_at <= observed.now - %(lag)s * interval '1 second' AS seen_aged,
        observed.newest,
        observed.now
    FROM state, observed
), plan AS (
    -- A new newest id is observed once every id seen before is adopted: while a bounded
    -- step has adopted only part of them, the rest stay adoptable at the next step
    -- (so catching up a large table is not held to one step per LAG).
    SELECT stepped.*,
        CASE WHEN seen_aged AND (old_seen_at IS NULL OR new_max >= old_seen OR %(lag)s = 0)
             THEN newest ELSE old_seen END AS new_seen,
        CASE WHEN seen_aged AND (old_seen_at IS NULL OR new_max >= old_seen OR %(lag)s = 0)
             THEN now ELSE old_seen_at END AS new_seen_at
    FROM stepped
), fresh AS (
    -- The hours closing now, and the late calls of hours already closed.
    SELECT created_at, site_id, app_type, status, tokens_used, latency_ms, id,
           error_message FROM {runs}
    WHERE created_at >= (SELECT old_until FROM plan)
      AND created_at < (SELECT new_until FROM plan)
      AND id <= (SELECT new_max FROM plan)
    UNION ALL
    SELECT created_at, site_id, app_type, status, tokens_used, latency_ms, id,
           error_message FROM {runs}
    WHERE id > (SELECT old_max FROM plan) AND id <= (SELECT new_max FROM plan)
      AND created_at < (SELECT old_until FROM plan)
), calls AS (
    INSERT INTO {rollup} AS r (hour, site_id, app_type, calls, successes, failures, tokens,
                               success_tokens, latency_sum, latency_count)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, count(*),
           count(*) FILTER (WHERE status = 'success'), count(*) FILTER (WHERE {failed}),
           coalesce(sum(tokens_used), 0),
           coalesce(sum(tokens_used) FILTER (WHERE status = 'success'), 0),
           coalesce(sum(latency_ms), 0), count(latency_ms)
    FROM fresh GROUP BY 1, 2, 3
    ON CONFLICT (hour, site_id, app_type) DO UPDATE SET
        calls = r.calls + excluded.calls,
        successes = r.successes + excluded.successes,
        failures = r.failures + excluded.failures,
        tokens = r.tokens + excluded.tokens,
        success_tokens = r.success_tokens + excluded.success_tokens,
        latency_sum = r.latency_sum + excluded.latency_sum,
        latency_count = r.latency_count + excluded.latency_count
), latencies AS (
    INSERT INTO {latency} AS l (hour, site_id, bucket, calls, min_ms, max_ms)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, {bucket}, count(*),
           min(latency_ms), max(latency_ms)
    FROM fresh WHERE latency_ms IS NOT NULL GROUP BY 1, 2, 3
    ON CONFLICT (hour, site_id, bucket) DO UPDATE SET
        calls = l.calls + excluded.calls,
        min_ms = least(l.min_ms, excluded.min_ms),
        max_ms = greatest(l.max_ms, excluded.max_ms)
), app_latencies AS (
    INSERT INTO {app_latency} AS l (hour, site_id, app_type, bucket, calls, min_ms, max_ms)
    SELECT date_trunc('hour', created_at, %(zone)s), site_id, app_type, {bucket}, count(*),
           min(latency_ms), max(latency_ms)
    FROM fresh WHERE latency_ms IS NOT NULL GROUP BY 1, 2, 3, 4
    ON CONFLICT (hour, site_id, app_type, bucket) DO UPDATE SET
        calls = l.calls + excluded.calls,
        min_ms = least(l.min_ms, excluded.min_ms),
        max_ms = greatest(l.max_ms, excluded.max_ms)
), {summary_ctes} saved AS (
    UPDATE {state} SET covered_until = plan.new_until, max_id = plan.new_max,
                       seen_id = plan.new_seen, seen_at = plan.new_seen_at
    FROM plan
    WHERE {state}.id = 1
      AND (plan.old_until, plan.old_max, plan.new_seen)
          IS DISTINCT FROM (plan.new_until, plan.new_max, {state}.seen_id)
)
SELECT new_until, new_max, shrunk FROM plan
UNION ALL
SELECT covered_until, max_id, false FROM {state} WHERE id = 1 AND NOT EXISTS (SELECT FROM plan)
"""


def closing_point(now: dt.datetime | None = None) -> dt.datetime:
    """The start of the local hour that contains ``now - GRACE``: hours before it are closed."""
    return local_hour_floor((now or timezone.now()) - GRACE)


def local_hour_floor(moment: dt.datetime) -> dt.datetime:
    return timezone.localtime(moment).replace(minute=0, second=0, microsecond=0)


def refresh(
    now: dt.datetime | None = None, lag: int | None = None, unbounded: bool = False
) -> State:
    """Sum the hours that closed and the late calls; the state the figures read with.

    ``lag``: seconds before an observed id is adopted (default ROLLUP_LAG_SECONDS or
    60); 0 adopts the newest id at once. A request's refresh does a bounded step
    (STEP_HOURS of hours, STEP_IDS of ids); ``unbounded`` catches up at once (the
    command line).
    """
    from aimonitor.summaries import failures  # it reads through this module

    sql = REFRESH_SQL.format(
        summary_ctes=failures.refresh_ctes() + latency.refresh_ctes(_bucket_sql("latency_ms")),
        state=_table(RollupState),
        runs=_table(RunLog),
        rollup=_table(RunRollup),
        latency=_table(RunLatencyRollup),
        app_latency=_table(RunAppLatencyRollup),
        bucket=_bucket_sql("latency_ms"),
        failed=FAILED,
    )
    params = {
        "until": closing_point(now),
        "lag": getattr(settings, "ROLLUP_LAG_SECONDS", LAG_SECONDS) if lag is None else lag,
        "step_hours": None if unbounded else STEP_HOURS,
        "step_ids": None if unbounded else STEP_IDS,
        "zone": str(settings.TIME_ZONE),
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return NOTHING
    until, max_id, shrunk = row
    if shrunk:
        # Calls were removed (the table was emptied or recreated): start again.
        rebuild()
        return NOTHING
    return State(until, max_id or 0)


@contextmanager
def refreshed():
    """Refresh once for a block of figures (a dashboard request) rather than per figure."""
    try:
        state = refresh()
    except DatabaseError as error:
        # Each figure then refreshes on its own, and fails on its own.
        logger.warning("Rollups not refreshed: %s", error)
        state = None
    token = _refreshed.set(state)
    try:
        yield
    finally:
        _refreshed.reset(token)


def rebuild() -> None:
    """Forget every rollup; the next refreshes sum everything again."""
    with transaction.atomic():
        RollupState.objects.select_for_update().filter(pk=1).exists()
        RunRollup.objects.all().delete()
        RunLatencyRollup.objects.all().delete()
        RunAppLatencyRollup.objects.all().delete()
        from aimonitor.summaries import failures

        failures.forget()
        latency.forget()
        RollupState.objects.update_or_create(
            pk=1, defaults={"covered_until": None, "max_id": 0, "seen_id": 0, "seen_at": None}
        )


# --- Reading a window ---------------------------------------------------------------


def site_scope(runs) -> list[int] | None:
    """The site ids a scoped ``RunLog`` queryset is narrowed to (None: every site).

    The rollups are read with the same scope as the calls. Only the narrowing of
    ``visible_to()`` and ``for_site()`` is understood; any other filter is an error
    rather than a silently different figure.
    """
    query = runs.query
    if query.is_empty():
        return []
    where = query.where
    if where.negated or (len(where.children) > 1 and where.connector != "AND"):
        raise ValueError("Rollup figures take calls narrowed by site only.")
    sites: set[int] | None = None
    for lookup in where.children:
        target = getattr(getattr(lookup, "lhs", None), "target", None)
        if not isinstance(lookup, Exact | In) or getattr(target, "attname", "") != "site_id":
            raise ValueError("Rollup figures take calls narrowed by site only.")
        values = {int(lookup.rhs)} if isinstance(lookup, Exact) else {int(v) for v in lookup.rhs}
        sites = values if sites is None else sites & values
    return None if sites is None else sorted(sites)


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

    def __init__(self, state: State, site_ids: list[int] | None, alias: str = DEFAULT_DB_ALIAS):
        self.state = state
        self.alias = alias
        self.parts: dict[str, list[str]] = {}
        self.group = "parts"
        self.params: dict = {
            "zone": str(settings.TIME_ZONE),
            "sites": site_ids,
            "planned_until": state.covered_until,
            "planned_max": state.max_id,
        }
        self.site_clause = "" if site_ids is None else "AND site_id = ANY(%(sites)s)"

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
                self.add(rollup_part, key=key, a=a, b=b, **latency.whole_days(a, b))
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
            FROM {_table(RollupState)} WHERE id = 1
        ) SELECT q.*, coalesce((SELECT same FROM checked), %(nothing_planned)s)
          FROM ({sql}) q"""
        self.params["nothing_planned"] = self.state.covered_until is None
        with connections[self.alias].cursor() as cursor:
            cursor.execute(sql, self.params)
            rows = cursor.fetchall()
        if rows and not all(row[-1] for row in rows) and self.state.covered_until is not None:
            return None
        return [row[:-1] for row in rows]


def _read(site_ids, build) -> list[tuple]:
    """Refresh, then read; again if a concurrent refresh changed the rollups meanwhile.

    ``build(query)`` adds the parts to ``query`` and returns the outer statement.
    The refresh writes on the primary; the read goes where the router sends it. On a
    replica the rollups and their state are those the replica has replayed so far,
    consistent with its calls: the plan takes the state from there.
    """
    alias = read_alias(RunRollup)
    state = _refreshed.get()
    for _ in range(3):
        state = state or refresh()
        if alias != DEFAULT_DB_ALIAS:
            state = replica_state(alias)
        query = _Query(state, site_ids, alias)
        rows = query.run(build(query))
        if rows is not None:
            return rows
        state = None
    query = _Query(NOTHING, site_ids, alias)  # every call read raw: always consistent
    return query.run(build(query))


def replica_state(alias: str) -> State:
    """The rollups' state as the database ``alias`` (a replica) has it now."""
    with connections[alias].cursor() as cursor:
        cursor.execute(f"SELECT covered_until, max_id FROM {_table(RollupState)} WHERE id = 1")
        row = cursor.fetchone()
    return State(row[0], row[1] or 0) if row else NOTHING


def _add_sums(query: _Query, windows: dict[str, tuple], by: str) -> str:
    """Add the sum parts of ``windows`` to ``query``; the statement that totals them."""
    runs, rollup = _table(RunLog), _table(RunRollup)
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
    runs, bucket = _table(RunLog), _bucket_sql("latency_ms")
    if by == "app":
        hours, key = _table(RunAppLatencyRollup), "app_type"
    else:
        hours, key = _table(RunLatencyRollup), "%(key)s"
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


def sums(site_ids: list[int] | None, windows: dict[str, tuple], by: str = "window") -> dict:
    """``{key: {calls, successes, tokens, success_tokens, latency_sum, latency_count}}``.

    Keys are the window names (``by="window"``), the local days (``"day"``) or the
    app types (``"app"``) of the calls in the windows.
    """
    return _sums_of(_read(site_ids, lambda query: _add_sums(query, windows, by)))


def latency_percentiles(
    site_ids: list[int] | None, windows: dict[str, tuple], fraction: float
) -> dict[str, float | None]:
    """``{window: the latency at ``fraction`` (like percentile_cont), None if no latency}``."""
    rows = _read(site_ids, lambda query: _add_latencies(query, windows))
    return _percentiles_of(rows, windows, fraction)


def apps_in_window(
    site_ids: list[int] | None, window: tuple, fraction: float
) -> tuple[dict, dict[str, float | None]]:
    """Per app type in ``window``: its sums and its latency at ``fraction``, one statement."""

    def build(query: _Query) -> str:
        windows = {"w": window}
        totals, latencies = _add_sums(query, windows, "app"), _add_latencies(query, windows, "app")
        return f"""SELECT 's', key::text, NULL::int, {", ".join(SUMS)}
            FROM ({totals}) t (key, {", ".join(SUMS)})
            UNION ALL
            SELECT 'l', key, bucket, calls, lo, hi, NULL, NULL, NULL, NULL
            FROM ({latencies}) l (key, bucket, calls, lo, hi)"""

    rows = _read(site_ids, build)
    totals = _sums_of(row[1:2] + row[3:] for row in rows if row[0] == "s")
    buckets = [row[1:6] for row in rows if row[0] == "l"]
    return totals, _percentiles_of(buckets, {}, fraction)


def sums_and_percentiles(
    site_ids: list[int] | None, windows: dict[str, tuple], fraction: float
) -> tuple[dict, dict[str, float | None]]:
    """``sums(site_ids, windows)`` and ``latency_percentiles(...)`` in one statement."""

    def build(query: _Query) -> str:
        totals, latencies = _add_sums(query, windows, "window"), _add_latencies(query, windows)
        return f"""SELECT 's', key::text, NULL::int, {", ".join(SUMS)}
            FROM ({totals}) t (key, {", ".join(SUMS)})
            UNION ALL
            SELECT 'l', key, bucket, calls, lo, hi, NULL, NULL, NULL, NULL
            FROM ({latencies}) l (key, bucket, calls, lo, hi)"""

    rows = _read(site_ids, build)
    totals = _sums_of(row[1:2] + row[3:] for row in rows if row[0] == "s")
    buckets = [row[1:6] for row in rows if row[0] == "l"]
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
