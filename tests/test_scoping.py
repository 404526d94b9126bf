"""The one scoping point: a user sees only the rows of their sites, in every AI table."""

import dataclasses

import pytest
from django.core.exceptions import PermissionDenied

from aimonitor.models import CacheEntry, RunLog, TriggerJob
from aimonitor.scope import Scope
from tests.conftest import make_cache, make_job, make_run, make_user

FACTORIES = {RunLog: make_run, TriggerJob: make_job, CacheEntry: make_cache}


@pytest.mark.parametrize("model", [RunLog, TriggerJob, CacheEntry])
def test_site_one_user_never_sees_site_two(bob, model):
    mine = FACTORIES[model](site_id=1)
    FACTORIES[model](site_id=2)
    assert list(model.objects.visible_to(Scope.for_user(bob)).values_list("id", flat=True)) == [
        mine.id
    ]


@pytest.mark.parametrize("model", [RunLog, TriggerJob, CacheEntry])
def test_superuser_and_all_sites_users_see_everything(root, model, db):
    everyone = make_user("dora", "viewer", all_sites=True)
    FACTORIES[model](site_id=1)
    FACTORIES[model](site_id=7)
    assert model.objects.visible_to(Scope.for_user(root)).count() == 2
    assert model.objects.visible_to(Scope.for_user(everyone)).count() == 2


def test_user_without_site_access_sees_nothing(db):
    nobody = make_user("eve", None)
    make_run(site_id=1)
    assert RunLog.objects.visible_to(Scope.for_user(nobody)).count() == 0


def test_inactive_user_sees_nothing(bob):
    make_run(site_id=1)
    bob.is_active = False
    bob.save()
    bob.refresh_from_db()
    assert RunLog.objects.visible_to(Scope.for_user(bob)).count() == 0


def test_pending_alerts_include_null_and_pending(bob):
    null_alert = make_run(status="failed", alert_status=None)
    pending = make_run(status="timeout", alert_status="pending")
    make_run(status="circuit_open", alert_status="acknowledged")
    make_run(status="success")
    ids = set(
        RunLog.objects.visible_to(Scope.for_user(bob)).pending_alerts().values_list("id", flat=True)
    )
    assert ids == {null_alert.id, pending.id}


def test_scope_for_user_is_the_users_sites(db, bob, alice, charlie, root):
    everyone = make_user("dora", "viewer", all_sites=True)
    assert Scope.for_user(bob).site_ids == (1,)
    assert Scope.for_user(alice).site_ids == (1, 2)
    assert Scope.for_user(charlie).site_ids == (2,)
    assert Scope.for_user(root).is_all_sites
    assert Scope.for_user(everyone).is_all_sites
    assert Scope.for_user(make_user("eve", None)).site_ids == ()


def test_scope_is_asked_once_per_user_object(bob, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert Scope.for_user(bob) is Scope.for_user(bob)


def test_narrow_keeps_within_the_users_sites(db, bob, alice, root):
    assert Scope.for_user(alice).narrow(2).site_ids == (2,)
    assert Scope.for_user(alice).narrow(None) == Scope.for_user(alice)
    assert Scope.for_user(bob).narrow(2).site_ids == ()  # never wider than the user's sites
    assert Scope.for_user(root).narrow(3).site_ids == (3,)
    make_run(site_id=1)
    make_run(site_id=2)
    assert RunLog.objects.visible_to(Scope.for_user(bob).narrow(2)).count() == 0
    assert RunLog.objects.visible_to(Scope.for_user(alice).narrow(2)).count() == 1


def test_require_is_a_403_outside_the_users_sites(db, bob, root):
    assert Scope.for_user(bob).require(1) == 1
    with pytest.raises(PermissionDenied, match="site 2"):
        Scope.for_user(bob).require(2)
    assert Scope.for_user(root).require(99) == 99
    with pytest.raises(PermissionDenied):
        Scope.nothing().require(1)


def test_a_scope_cannot_be_changed(bob):
    with pytest.raises(dataclasses.FrozenInstanceError):
        Scope.for_user(bob).site_ids = None


def test_visible_to_takes_a_scope_not_a_user(bob):
    with pytest.raises(TypeError, match="Scope"):
        RunLog.objects.visible_to(bob)
