from __future__ import annotations

import os

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from aimonitor.models import SiteAccess
from aimonitor.roles import ROLES, STAFF_ROLES


class Command(BaseCommand):
    help = (
        "Create USERNAME if missing and give it exactly this role and these sites. "
        "The password of a new user comes from AIMONITOR_PASSWORD when set. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=ROLES)
        parser.add_argument("--site", type=int, action="append", default=[], dest="sites")
        parser.add_argument("--all-sites", action="store_true")

    @transaction.atomic
    def handle(self, username, role, sites, all_sites, **options):
        if not sites and not all_sites:
            raise CommandError("Give at least one --site ID, or --all-sites.")
        if any(site <= 0 for site in sites):
            raise CommandError("Site ids are positive integers.")
        user, created = get_user_model().objects.get_or_create(username=username)
        password = os.environ.get("AIMONITOR_PASSWORD")
        if password:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        user.is_staff = role in STAFF_ROLES
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        SiteAccess.objects.update_or_create(
            user=user,
            defaults={"all_sites": all_sites, "site_ids": [] if all_sites else sorted(set(sites))},
        )
        where = "all sites" if all_sites else "sites " + ", ".join(map(str, sorted(set(sites))))
        verb = "Created" if created else "Updated"
        self.stdout.write(f"{verb} {username}: {role} of {where}.")
