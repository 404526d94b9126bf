"""Latency buckets that hold every integer (issue #13, item 1).

Negative latencies (clock skew) now have buckets of their own below bucket 0, and the
buckets' ends are bigint like the sums. The rollups summed with the old buckets are
forgotten: the next refreshes (or ``manage.py rollup_runs``) sum everything again.
"""

from django.db import migrations, models


def forget_rollups(apps, schema_editor):
    apps.get_model("aimonitor", "RunRollup").objects.all().delete()
    apps.get_model("aimonitor", "RunLatencyRollup").objects.all().delete()
    apps.get_model("aimonitor", "RollupState").objects.update_or_create(
        pk=1, defaults={"covered_until": None, "max_id": 0, "seen_id": 0, "seen_at": None}
    )


class Migration(migrations.Migration):

    dependencies = [
        ("aimonitor", "0009_job_retry"),
    ]

    operations = [
        migrations.AlterField(
            model_name="runlatencyrollup", name="min_ms", field=models.BigIntegerField()
        ),
        migrations.AlterField(
            model_name="runlatencyrollup", name="max_ms", field=models.BigIntegerField()
        ),
        migrations.RunPython(forget_rollups, migrations.RunPython.noop),
    ]
