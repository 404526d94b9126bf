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


def test_seed_demo_tells_a_story_within_the_default_budget(db, settings):
    """A fresh `make run` shows something real (issue #13, item 5): a budget in use but
    not blown, one app's burst of timeouts, one slow app, one site's open circuit and a
    few stuck jobs."""
    import datetime as dt

    from django.db.models import Avg, Count, Q
    from django.utils import timezone

    from aimonitor.figures import calls as figures

    assert (settings.DAILY_TOKEN_LIMIT, settings.MONTHLY_TOKEN_LIMIT) == (100_000, 2_000_000)
    call_command("seed_demo", runs=20_000, days=30, sites=3, stdout=io.StringIO())
    assert RunLog.objects.count() == 20_000

    budget = figures.budget()
    assert 0.05 < budget["daily_pct"] < 1 and 0.05 < budget["monthly_pct"] < 1

    now = timezone.now()
    recent = RunLog.objects.filter(created_at__gte=now - dt.timedelta(hours=3))
    timeouts = dict(recent.filter(status="timeout").values_list("app_type").annotate(n=Count("id")))
    assert timeouts.get("app3_clue", 0) >= 50
    assert all(n * 10 < timeouts["app3_clue"] for app, n in timeouts.items() if app != "app3_clue")
    assert RunLog.objects.pending_alerts().filter(app_type="app3_clue").count() >= 50

    latency = dict(
        RunLog.objects.filter(status="success")
        .values_list("app_type")
        .annotate(avg=Avg("latency_ms"))
    )
    slowest_other = max(v for app, v in latency.items() if app != "app7_review")
    assert latency["app7_review"] > 3 * slowest_other

    circuit = RunLog.objects.filter(status="circuit_open")
    assert set(circuit.values_list("site_id", flat=True).distinct()) == {3}
    assert circuit.filter(created_at__gte=now - dt.timedelta(days=1)).count() >= 20

    stuck = TriggerJob.objects.filter(
        status="pending", created_at__lt=now - dt.timedelta(minutes=15)
    )
    assert 3 <= stuck.count() <= 10
    assert TriggerJob.objects.count() == 5_000
    assert not RunLog.objects.filter(Q(tokens_used__lt=0)).exists()
