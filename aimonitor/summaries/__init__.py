"""The summaries of ``ai_run_logs``: the dashboard's figures stay instant at ten million calls.

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

``keeping`` writes the rollups (``refresh``, ``refreshed``, ``rebuild``; its statement in
``refresh.sql``), ``reading`` reads a scope's windows from them (``sums``,
``latency_percentiles``, ``sums_and_percentiles``, ``apps_in_window``). Every read takes
an ``aimonitor.scope.Scope``. The public names are re-exported here.
"""

from aimonitor.summaries.keeping import (
    GRACE,
    HOUR,
    LAG_SECONDS,
    NOTHING,
    STEP_HOURS,
    STEP_IDS,
    State,
    closing_point,
    local_hour_floor,
    rebuild,
    refresh,
    refreshed,
)
from aimonitor.summaries.reading import (
    SUMS,
    apps_in_window,
    latency_percentiles,
    mean,
    percentile,
    replica_state,
    split,
    sums,
    sums_and_percentiles,
)

__all__ = [
    "GRACE",
    "HOUR",
    "LAG_SECONDS",
    "NOTHING",
    "STEP_HOURS",
    "STEP_IDS",
    "SUMS",
    "State",
    "apps_in_window",
    "closing_point",
    "latency_percentiles",
    "local_hour_floor",
    "mean",
    "percentile",
    "rebuild",
    "refresh",
    "refreshed",
    "replica_state",
    "split",
    "sums",
    "sums_and_percentiles",
]
