"""Sum the closed hours of ai_run_logs into the dashboard's rollups (aimonitor.summaries).

The dashboard keeps its rollups up to date by itself; run this once on a large
existing table before opening the console (the first summing reads every call),
or with ``--rebuild`` after calls were changed or deleted in bulk.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from aimonitor.models import (
    FailureCall,
    FailurePendingHour,
    FailureRollup,
    RollupState,
    RunAppLatencyDay,
    RunAppLatencyRollup,
    RunLatencyRollup,
    RunRollup,
)
from aimonitor.summaries import failures, keeping

SUMMARY_MODELS = (
    RunRollup,
    RunLatencyRollup,
    RunAppLatencyRollup,
    RunAppLatencyDay,
    FailureRollup,
    FailureCall,
    FailurePendingHour,
    RollupState,
)


class Command(BaseCommand):
    help = "Sum the closed hours of ai_run_logs into the dashboard's rollups."

    def add_arguments(self, parser):
        parser.add_argument("--rebuild", action="store_true", help="Forget them and sum again.")
        parser.add_argument(
            "--no-wait",
            action="store_true",
            help="Adopt the newest id at once instead of a minute after seeing it "
            "(safe when nothing is writing to the table).",
        )

    def handle(self, *args, rebuild: bool, no_wait: bool, **options):
        started = time.monotonic()
        if rebuild:
            keeping.rebuild()
        if no_wait:
            refresh(lag=0)  # places the first closed hour
            state = refresh(lag=0)
        else:
            refresh()  # places the first closed hour, notes the newest id
            time.sleep(keeping.LAG_SECONDS)
            state = refresh(lag=keeping.LAG_SECONDS)
        recounted = count_pending()
        analyze_summaries()
        self.stdout.write(
            f"Rollups hold the calls created before {state.covered_until} with ids up to "
            f"{state.max_id:,}; pending alerts counted again in {recounted:,} hours and "
            f"sites ({time.monotonic() - started:.1f} s)."
        )


def refresh(**options) -> keeping.State:
    """One unbounded refresh: summing a whole table is the one place a statement may run long.

    ``SET LOCAL`` in its own transaction, not ``SET``: through a pooler in transaction
    mode (PgBouncer) a session setting would stay on a server connection that other
    clients then use (docs/SCALING.md).
    """
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")
        return keeping.refresh(unbounded=True, **options)


def count_pending() -> int:
    """The failure groups' pending counts, every changed hour counted again (in steps)."""
    total = 0
    while True:
        counted, changed = failures.count_pending()
        total += counted
        if counted >= changed:
            return total


def analyze_summaries() -> None:
    """Statistics for the summaries just filled in bulk: until autovacuum comes by, the
    planner would plan the range figures and the failure groups for empty tables (at ten
    million calls the failure groups' statement once took twice as long that way)."""
    with connection.cursor() as cursor:
        for model in SUMMARY_MODELS:
            cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
