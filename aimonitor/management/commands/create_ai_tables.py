from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from aimonitor import ai_tables


class Command(BaseCommand):
    help = (
        "Create the AI service's tables and recommended indexes where missing; "
        "with --check, only verify the database against the contract."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; exit non-zero naming every missing table or column.",
        )
        parser.add_argument(
            "--partitioned",
            action="store_true",
            help=(
                "Create ai_run_logs and ai_trigger_jobs partitioned by month of created_at "
                "(primary keys (id, created_at), a DEFAULT partition); run again to add "
                "the months that came into range."
            ),
        )

    def handle(self, *args, check: bool = False, partitioned: bool = False, **options):
        if not check:
            try:
                ai_tables.create_missing(partitioned=partitioned)
            except ai_tables.NotPartitionable as error:
                raise CommandError(str(error)) from error
            except DatabaseError as error:
                # A table that exists without a column an index needs: report
                # what is missing below instead of the raw SQL error.
                self.stderr.write(f"Could not apply the DDL: {error}".strip())
        problems = ai_tables.missing_parts()
        if problems:
            raise CommandError(
                "The AI tables do not match the contract:\n  " + "\n  ".join(problems)
            )
        self.stdout.write("AI tables match the contract." if check else "AI tables are in place.")
