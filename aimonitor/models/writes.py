"""What the writes keep beside the audit trail: one-time keys (``OnceToken``), the
retries of trigger jobs (``JobRetry``) and batches estimated but not yet confirmed
(``PendingBatch``; see ``aimonitor/operations/``)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class OnceToken(models.Model):
    """A key that may be used once: the database guard against double submits.

    A write that must not happen twice (a retry form sent twice, a batch confirmed
    from two tabs or two server processes) claims its key in the same transaction
    as the write; the unique constraint lets exactly one transaction through.
    """

    key = models.CharField(max_length=100, unique=True)
    action = models.CharField(max_length=32)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(default=timezone.now)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = _("once token")
        verbose_name_plural = _("once tokens")

    def __str__(self) -> str:
        return f"{self.action} {self.key}"


class JobRetry(models.Model):
    """One retry of a trigger job: ``original_id`` was copied as ``copy_id``.

    Console-owned and written in the retry's own transaction (``operations/jobs.py``
    explains why this table rather than the audit trail answers "already retried").
    ``generation`` counts the retries of one original (1, 2, ...); the unique
    constraint on (original, generation) lets exactly one of two concurrent retries
    of the same state through.
    """

    original_id = models.BigIntegerField(_("original job"))
    generation = models.PositiveIntegerField(_("retry number"))
    # Set in the same transaction, right after the copy is inserted: never seen empty.
    copy_id = models.BigIntegerField(_("copy"), null=True, unique=True)
    site_id = models.BigIntegerField(_("site"))
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("job retry")
        verbose_name_plural = _("job retries")
        constraints = [
            models.UniqueConstraint(
                fields=["original_id", "generation"], name="job_retry_once_per_generation"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.original_id} → #{self.copy_id}"


class PendingBatch(models.Model):
    """A batch run that was estimated and waits for its confirm or cancel.

    One row per estimate, tied to the session that made it: estimates made at the same
    moment in one session (several tabs, parallel requests) never drop each other, as
    they did when all of them were one value in the session, written whole by each
    request. Confirming stays exactly-once through the batch's ``OnceToken``.
    """

    batch_id = models.CharField(max_length=32, primary_key=True)
    session_key = models.CharField(max_length=40)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    site_id = models.BigIntegerField()
    app_types = ArrayField(models.CharField(max_length=64))
    member_ids = ArrayField(models.BigIntegerField())
    duplicates = models.IntegerField(default=0)
    # Each app's mean tokens per call when estimated (the estimate's basis, kept as shown).
    tokens_per_call = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        indexes = [
            models.Index(fields=["session_key", "created_at"], name="pending_batch_session_idx")
        ]

    def __str__(self) -> str:
        return f"batch {self.batch_id} (site {self.site_id})"
