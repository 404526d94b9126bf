"""The one scoping point: a user sees only the rows of their sites, in every AI table."""

import pytest

from aimonitor.models import CacheEntry, RunLog, TriggerJob
from tests.conftest import make_cache, make_job, make_run, make_user

FACTORIES = {RunLog: make_run, TriggerJob: make_job, CacheEntry: make_cache}


@pytest.mark.parametrize("model", [RunLog, TriggerJob, CacheEntry])
def test_site_one_user_never_sees_site_two(bob, model):
    mine = FACTORIES[model](site_id=1)
    FACTORIES[model](site_id=2)
    assert list(model.objects.visible_to(bob).values_list("id", flat=True)) == [mine.id]


@pytest.mark.parametrize("model", [RunLog, TriggerJob, CacheEntry])
def test_superuser_and_all_sites_users_see_everything(root, model, db):
    everyone = make_user("dora", "viewer", all_sites=True)
    FACTORIES[model](site_id=1)
    FACTORIES[model](site_id=7)
    assert model.objects.visible_to(root).count() == 2
    assert model.objects.visible_to(everyone).count() == 2


def test_user_without_site_access_sees_nothing(db):
    nobody = make_user("eve", None)
    make_run(site_id=1)
    assert RunLog.objects.visible_to(nobody).count() == 0


def test_inactive_user_sees_nothing(bob):
    make_run(site_id=1)
    bob.is_active = False
    bob.save()
    bob.refresh_from_db()
    assert RunLog.objects.visible_to(bob).count() == 0


def test_pending_alerts_include_null_and_pending(bob):
    null_alert = make_run(status="failed", alert_status=None)
    pending = make_run(status="timeout", alert_status="pending")
    make_run(status="circuit_open", alert_status="acknowledged")
    make_run(status="success")
    ids = set(RunLog.objects.visible_to(bob).pending_alerts().values_list("id", flat=True))
    assert ids == {null_alert.id, pending.id}
