"""``manage.py run_worker [--once]``: the console's second process (SPEC.md §10).

Without ``--once``: a procrastinate worker on the ``notify`` queue. Its periodic task
runs the pass every AIMONITOR_WORKER_INTERVAL_SECONDS; its delivery jobs send the
messages (several at once, so a slow channel holds one slot, not the others). Any
number of workers may run against one database.

``--once`` (cron, tests): one pass now, then the deliveries that are due, then exit.
Retries scheduled for later are left queued for the next run.
"""

from __future__ import annotations

from django.core.management.base import BaseCommand
from procrastinate.contrib.django import app

from alerts.tasks import QUEUE, enqueue
from alerts.worker import work_pass


class Command(BaseCommand):
    help = "Refresh the summaries, evaluate the notification rules and deliver (every interval)."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="Run one pass and exit.")
        parser.add_argument(
            "--concurrency", type=int, default=4, help="Deliveries sent at once (default 4)."
        )

    def handle(self, *args, once: bool = False, concurrency: int = 4, **options):
        if once:
            done = work_pass(enqueue)
            self.stdout.write(
                f"Pass: rollups {'current' if done.rollups_current else 'catching up'} "
                f"({done.rollup_steps} steps); incidents opened {len(done.result.opened)}, "
                f"reminded {len(done.result.reminded)}, resolved {len(done.result.resolved)}; "
                f"deliveries queued {len(done.result.deliveries) + len(done.requeued)}."
            )
        with app.replace_connector(app.connector.get_worker_connector()):
            app.run_worker(
                queues=[QUEUE],
                wait=not once,
                concurrency=concurrency,
                # A pass every minute would otherwise leave 1,440 finished jobs a day;
                # what was sent is on the Delivery rows.
                delete_jobs="successful",
                # --once must not wait for a listen/notify or start the periodic ticks' pass.
                listen_notify=not once,
                install_signal_handlers=not once,
            )
