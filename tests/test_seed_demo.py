import io

from django.core.management import call_command

from aimonitor.models import CacheEntry, RunLog, TriggerJob


def test_seed_demo_fills_every_table_with_a_realistic_mix(db):
    call_command("seed_demo", runs=4000, days=10, sites=3, stdout=io.StringIO())
    assert RunLog.objects.count() == 4000
    assert TriggerJob.objects.count() == 1000
    assert CacheEntry.objects.count() == 400
    statuses = set(RunLog.objects.values_list("status", flat=True).distinct())
    assert {"success", "failed", "timeout", "circuit_open"} <= statuses
    assert set(RunLog.objects.values_list("site_id", flat=True).distinct()) == {1, 2, 3}
    assert RunLog.objects.values("app_type").distinct().count() == 8
    assert RunLog.objects.pending_alerts().exists()
    assert RunLog.objects.alerts().filter(alert_status="acknowledged").exists()
    assert TriggerJob.objects.filter(status="skipped_duplicate").exists()
    assert CacheEntry.objects.filter(status="invalidated").exists()
