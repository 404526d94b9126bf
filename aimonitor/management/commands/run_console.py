"""``manage.py run_console``: the web server and the worker together (``make run``).

Each runs as its own process group; Ctrl-C (SIGINT) or SIGTERM stops both, and if one
of them exits on its own the other is stopped too, so nothing is left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand

STOP_TIMEOUT = 10


class Command(BaseCommand):
    help = "Serve the console and run the notification worker; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options):
        manage = [sys.executable, sys.argv[0]]
        children = {
            "web": subprocess.Popen([*manage, "runserver", addrport], start_new_session=True),
            "worker": subprocess.Popen([*manage, "run_worker"], start_new_session=True),
        }
        self.stdout.write(
            f"web pid {children['web'].pid}, worker pid {children['worker'].pid}; Ctrl-C stops both.",
        )
        self.stdout.flush()
        stopping = []

        def stop(signum, frame):
            stopping.append(signum)

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            while not stopping and all(child.poll() is None for child in children.values()):
                time.sleep(0.2)
        finally:
            for child in children.values():
                if child.poll() is None:
                    os.killpg(child.pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            for child in children.values():
                try:
                    child.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    os.killpg(child.pid, signal.SIGKILL)
                    child.wait()
        self.stdout.write("Stopped the web server and the worker.")
