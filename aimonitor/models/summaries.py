"""The summaries of ``ai_run_logs`` (console-owned): hourly rollups and their state.

Kept and read by ``aimonitor.summaries``.
"""

from __future__ import annotations

from django.db import models


class RunRollup(models.Model):
    """Calls of one local hour, site and app type, summed: what the dashboard's figures
    read for closed hours instead of the raw rows. Kept by ``aimonitor.summaries``."""

    hour = models.DateTimeField()  # the start of a local hour in AIMONITOR_TIME_ZONE
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    calls = models.BigIntegerField(default=0)
    successes = models.BigIntegerField(default=0)
    failures = models.BigIntegerField(default=0)  # status failed, timeout or circuit_open
    tokens = models.BigIntegerField(default=0)
    success_tokens = models.BigIntegerField(default=0)
    latency_sum = models.BigIntegerField(default=0)
    latency_count = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "app_type"], name="run_rollup_hour_site_app"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} {self.app_type}: {self.calls}"


class RunLatencyRollup(models.Model):
    """How many calls of one local hour and site had a latency in one bucket (buckets
    2 % wide), with the bucket's smallest and largest value: the p95 of closed hours."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    bucket = models.IntegerField()
    calls = models.BigIntegerField(default=0)
    min_ms = models.BigIntegerField()
    max_ms = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "bucket"], name="run_latency_hour_site_bucket"
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} bucket {self.bucket}"


class RunAppLatencyRollup(models.Model):
    """The latency buckets of ``RunLatencyRollup`` per app type too: each app's p95 over a
    range (the dashboard's apps table) from closed hours."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    bucket = models.IntegerField()
    calls = models.BigIntegerField(default=0)
    min_ms = models.IntegerField()
    max_ms = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "app_type", "bucket"],
                name="run_app_latency_hour_site_app_bucket",
            )
        ]

    def __str__(self) -> str:
        return (
            f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} {self.app_type} bucket {self.bucket}"
        )


class RollupState(models.Model):
    """The one row saying what the rollups hold: every call created before
    ``covered_until`` whose id is at most ``max_id``. ``seen_id``/``seen_at`` is the
    newest id observed at the last refresh, adopted as ``max_id`` a minute later so
    that a slow transaction's row with a smaller id is not skipped."""

    covered_until = models.DateTimeField(null=True)
    max_id = models.BigIntegerField(default=0)
    seen_id = models.BigIntegerField(default=0)
    seen_at = models.DateTimeField(null=True)

    def __str__(self) -> str:
        return f"rollups until {self.covered_until}, ids <= {self.max_id}"


class FailureRollup(models.Model):
    """Failures of one local hour, site, app type, status and error signature (SPEC.md §8):
    how many, the first and last seen, and how many of their alerts are pending. What
    ``/failures/`` reads for closed hours. Kept with the rollups."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    status = models.CharField(max_length=32)
    signature = models.CharField(max_length=200)
    group_hash = models.BigIntegerField()  # of (app_type, status, signature), as FailureCall's
    calls = models.BigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    # Pending alerts among them when last counted: right while the hour and site's
    # FailurePendingHour still matches the live pending alerts (else counted again).
    pending = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["hour", "site_id", "app_type", "status", "signature"],
                name="failure_rollup_hour_group",
            )
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id} {self.app_type} {self.status}"


class FailurePendingHour(models.Model):
    """A checksum of the pending alerts of one local hour and site when ``FailureRollup.
    pending`` was last counted: how many, and two sums of hashes of their ids. A read
    computes the same from the pending-alerts index; where they agree, the stored pending
    counts hold (aimonitor/summaries/failures.py)."""

    hour = models.DateTimeField()
    site_id = models.BigIntegerField()
    pending = models.BigIntegerField()
    id_sum = models.BigIntegerField()  # sum(hashint8(id))
    id_xor = models.BigIntegerField()  # bit_xor(hashint8extended(id, 0))

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hour", "site_id"], name="failure_pending_hour_site")
        ]

    def __str__(self) -> str:
        return f"{self.hour:%Y-%m-%d %H:00} site {self.site_id}: {self.pending} pending"


class FailureCall(models.Model):
    """Each summed failure's group, as a hash of (app type, status, signature): the
    pending count of a group is then a join of the pending-alerts index with this
    table, rather than the signature computed again for every pending call."""

    created_at = models.DateTimeField()
    run_id = models.BigIntegerField()
    group_hash = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["created_at", "run_id"],
                include=["group_hash"],
                name="failure_call_created_run",
            )
        ]

    def __str__(self) -> str:
        return f"run {self.run_id}: group {self.group_hash}"


class RunAppLatencyDay(models.Model):
    """``RunAppLatencyRollup``'s buckets summed per local day: a range's p95 (and each
    app's) over whole days reads one row per bucket and day, not 24 (aimonitor/summaries/
    latency.py)."""

    day = models.DateTimeField()  # the start of a local day in AIMONITOR_TIME_ZONE
    site_id = models.BigIntegerField()
    app_type = models.CharField(max_length=64)
    bucket = models.IntegerField()
    calls = models.BigIntegerField(default=0)
    min_ms = models.IntegerField()
    max_ms = models.IntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["day", "site_id", "app_type", "bucket"],
                name="run_app_latency_day_site_app_bucket",
            )
        ]

    def __str__(self) -> str:
        return f"{self.day:%Y-%m-%d} site {self.site_id} {self.app_type} bucket {self.bucket}"
