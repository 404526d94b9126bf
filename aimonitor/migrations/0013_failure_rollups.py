from django.db import migrations, models


def forget_rollups(apps, schema_editor):
    """Rollups summed before this migration have no failure groups: forget them all, so
    the next refreshes sum every call again, into every rollup (aimonitor.summaries)."""
    for model in ("RunRollup", "RunLatencyRollup", "RunAppLatencyRollup"):
        apps.get_model("aimonitor", model).objects.all().delete()
    apps.get_model("aimonitor", "RollupState").objects.update(
        covered_until=None, max_id=0, seen_id=0, seen_at=None
    )


class Migration(migrations.Migration):
    dependencies = [
        ("aimonitor", "0012_pending_batch_tokens_per_call"),
    ]

    operations = [
        migrations.CreateModel(
            name="FailureCall",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("created_at", models.DateTimeField()),
                ("run_id", models.BigIntegerField()),
                ("group_hash", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("created_at", "run_id"),
                        include=("group_hash",),
                        name="failure_call_created_run",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="FailureRollup",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("hour", models.DateTimeField()),
                ("site_id", models.BigIntegerField()),
                ("app_type", models.CharField(max_length=64)),
                ("status", models.CharField(max_length=32)),
                ("signature", models.CharField(max_length=200)),
                ("group_hash", models.BigIntegerField()),
                ("calls", models.BigIntegerField(default=0)),
                ("first_seen", models.DateTimeField()),
                ("last_seen", models.DateTimeField()),
                ("newest_id", models.BigIntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("hour", "site_id", "app_type", "status", "signature"),
                        name="failure_rollup_hour_group",
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="RunAppLatencyDay",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("day", models.DateTimeField()),
                ("site_id", models.BigIntegerField()),
                ("app_type", models.CharField(max_length=64)),
                ("bucket", models.IntegerField()),
                ("calls", models.BigIntegerField(default=0)),
                ("min_ms", models.IntegerField()),
                ("max_ms", models.IntegerField()),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("day", "site_id", "app_type", "bucket"),
                        name="run_app_latency_day_site_app_bucket",
                    )
                ],
            },
        ),
        migrations.RunPython(forget_rollups, migrations.RunPython.noop),
    ]
