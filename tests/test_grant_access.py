import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from aimonitor.models import SiteAccess


def run(*args):
    call_command("grant_access", *args, stdout=io.StringIO())


def test_creates_user_with_role_and_sites(db, monkeypatch):
    monkeypatch.setenv("AIMONITOR_PASSWORD", "s3cret-pass")
    run("frank", "--role", "operator", "--site", "1", "--site", "3")
    user = get_user_model().objects.get(username="frank")
    assert [g.name for g in user.groups.all()] == ["operator"]
    assert user.check_password("s3cret-pass")
    assert not user.is_staff
    assert user.site_access.site_ids == [1, 3]
    assert user.has_perm("aimonitor.retry_job")
    assert not user.has_perm("aimonitor.run_batch")


def test_is_idempotent_and_sets_exactly_the_given_sites(db, monkeypatch):
    monkeypatch.delenv("AIMONITOR_PASSWORD", raising=False)
    run("frank", "--role", "admin", "--site", "1", "--site", "2")
    run("frank", "--role", "admin", "--site", "1", "--site", "2")
    run("frank", "--role", "viewer", "--site", "5")
    user = get_user_model().objects.get(username="frank")
    assert get_user_model().objects.filter(username="frank").count() == 1
    assert SiteAccess.objects.filter(user=user).count() == 1
    assert [g.name for g in user.groups.all()] == ["viewer"]
    assert user.site_access.site_ids == [5]
    assert not user.is_staff
    assert not user.has_usable_password()


def test_all_sites(db):
    run("gina", "--role", "admin", "--all-sites")
    user = get_user_model().objects.get(username="gina")
    assert user.site_access.all_sites
    assert user.is_staff


def test_refuses_missing_sites_and_bad_role(db):
    with pytest.raises(CommandError, match="--site"):
        run("hank", "--role", "viewer")
    with pytest.raises(CommandError):
        run("hank", "--role", "boss", "--site", "1")
    assert not get_user_model().objects.filter(username="hank").exists()
