"""Failure groups keep their pending count, checked against the live pending alerts;
the newest message is found from last_seen, so no newest id is kept.

Hours summed before this migration have no counts and no checksums yet: a read finds
them changed and counts their pending alerts live (exact, as before) until the worker's
next pass (or ``manage.py rollup_runs``) counts them (aimonitor/summaries/failures.py).
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('aimonitor', '0013_failure_rollups'),
    ]

    operations = [
        migrations.RemoveField(
            model_name='failurerollup',
            name='newest_id',
        ),
        migrations.AddField(
            model_name='failurerollup',
            name='pending',
            field=models.BigIntegerField(default=0),
        ),
        migrations.CreateModel(
            name='FailurePendingHour',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('hour', models.DateTimeField()),
                ('site_id', models.BigIntegerField()),
                ('pending', models.BigIntegerField()),
                ('id_sum', models.BigIntegerField()),
                ('id_xor', models.BigIntegerField()),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('hour', 'site_id'), name='failure_pending_hour_site')],
            },
        ),
    ]
