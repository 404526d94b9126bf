"""What `make run` does before serving: migrate, AI tables, demo data, admin login."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from aimonitor.embedded_db import DATA_DIR
from aimonitor.models import RunLog, SiteAccess

PASSWORD_FILE = DATA_DIR / "admin-password"


class Command(BaseCommand):
    help = (
        "Prepare a console to serve: migrate, create the AI tables if missing, load demo "
        "data when they are empty, sum the dashboard's rollups, ensure the 'admin' "
        "superuser, and print its login."
    )

    def add_arguments(self, parser):
        parser.add_argument("--demo-runs", type=int, default=200_000)

    def handle(self, *args, demo_runs: int, **options):
        call_command("migrate", verbosity=0)
        call_command("create_ai_tables", verbosity=0)
        if not RunLog.objects.exists():
            self.stdout.write("The AI tables are empty: loading demo data…")
            call_command("seed_demo", runs=demo_runs, stdout=self.stdout)
        # Sum the closed hours now, so the first dashboard does not do it piecemeal
        # (no wait for in-flight writes: nothing but the demo writes to these tables).
        call_command("rollup_runs", no_wait=True, stdout=self.stdout)
        password = self.admin_password()
        user, _ = get_user_model().objects.get_or_create(username="admin")
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        SiteAccess.objects.get_or_create(user=user, defaults={"all_sites": True})
        self.stdout.write(
            self.style.SUCCESS(
                "\n  AI Monitor: http://127.0.0.1:8000/\n"
                f"  Log in as: admin / {password}\n"
                f"  (password kept in {PASSWORD_FILE})\n"
            )
        )

    def admin_password(self) -> str:
        """A random password generated once and kept under .data/."""
        DATA_DIR.mkdir(exist_ok=True)
        if PASSWORD_FILE.exists():
            return PASSWORD_FILE.read_text().strip()
        password = secrets.token_urlsafe(12)
        PASSWORD_FILE.write_text(password + "\n")
        PASSWORD_FILE.chmod(0o600)
        return password
