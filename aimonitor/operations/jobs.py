"""Retrying trigger jobs (SPEC.md §4): a retry is a new, forced, pending copy of a job.

The job page, the bulk retry on the jobs list and the Django admin action all call
``retry_jobs`` (or its one-job form ``retry_job``), so they check the same
permission and scope and leave the same audit trail: one ``AuditEvent`` per
original job, ``target_ids=[original, copy]``, details
``{"retry_of": original, "new_job_id": copy}``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from aimonitor.access import can_see_site
from aimonitor.models import AuditEvent, TriggerJob
from aimonitor.operations.once import claim_once, claimed

AUDIT_TABLE = "ai_trigger_jobs"
RETRY_PERMISSION = "aimonitor.retry_job"
# One request never copies more than this many jobs.
BULK_LIMIT = 1000
# The columns a retry copies from the original job.
COPIED_FIELDS = ("event_type", "member_id", "site_id", "connector_type", "payload", "app_chain")


class TooManyJobs(ValueError):
    """A bulk retry over ``BULK_LIMIT``: nothing was created."""

    def __init__(self, count: int):
        self.count = count
        super().__init__(
            _("%(count)s jobs selected; at most %(limit)s can be retried at once.")
            % {"count": count, "limit": BULK_LIMIT}
        )


@dataclass(frozen=True)
class Retried:
    """What a retry did: ``{original id: new job id}``.

    ``repeated`` is True when the one-time key had been used already: nothing new
    was created and ``new_ids`` are the jobs the first submit created.
    """

    new_ids: dict[int, int] = field(default_factory=dict)
    repeated: bool = False


def check_can_retry(user) -> None:
    if not user.has_perm(RETRY_PERMISSION):
        raise PermissionDenied(_("You may not retry jobs."))


def retry_job(user, job: TriggerJob, *, key: str | None = None) -> Retried:
    """Retry one job; with ``key``, a second submit of the same form creates nothing."""
    return retry_jobs(user, [job.pk], key=key)


def retry_jobs(user, job_ids: Iterable[int], *, key: str | None = None) -> Retried:
    """Copy each visible job of ``job_ids`` as a forced, pending job, with its audit event.

    Jobs outside the user's sites are left out (the caller looked them up in
    the user's scope). ``key`` (a one-time form key) is claimed in the same
    transaction as the inserts, so a double submit inserts once.
    """
    check_can_retry(user)
    job_ids = sorted({int(job_id) for job_id in job_ids})
    if len(job_ids) > BULK_LIMIT:
        raise TooManyJobs(len(job_ids))
    with transaction.atomic():
        if key:
            token = claim_once(key, "retry", user)
            if token is None:
                first = claimed(key)
                done = first.result.get("new_ids", {}) if first else {}
                return Retried({int(k): v for k, v in done.items()}, repeated=True)
        originals = list(
            TriggerJob.objects.visible_to(user)
            .filter(pk__in=job_ids)
            .only("pk", *COPIED_FIELDS)
            .order_by("pk")
        )
        # The scope again, per row: this is the last check before the write.
        originals = [job for job in originals if can_see_site(user, job.site_id)]
        now = timezone.now()
        copies = TriggerJob.objects.bulk_create(
            [
                TriggerJob(
                    **{name: getattr(job, name) for name in COPIED_FIELDS},
                    is_forced=True,
                    status=TriggerJob.Status.PENDING,
                    created_at=now,
                )
                for job in originals
            ]
        )
        new_ids = {job.pk: copy.pk for job, copy in zip(originals, copies, strict=True)}
        for job in originals:
            AuditEvent.objects.record(
                actor=user,
                action=AuditEvent.Action.RETRY,
                target_table=AUDIT_TABLE,
                target_ids=[job.pk, new_ids[job.pk]],
                site_id=job.site_id,
                details={"retry_of": job.pk, "new_job_id": new_ids[job.pk]},
            )
        if key:
            token.result = {"new_ids": {str(k): v for k, v in new_ids.items()}}
            if len(new_ids) == 1:
                token.result["new_job_id"] = next(iter(new_ids.values()))
            token.save(update_fields=["result"])
    return Retried(new_ids)


def retry_history(job_ids: Iterable[int]) -> dict[int, list[dict]]:
    """``{job id: [{"kind": "retried_as"|"retry_of", "other": id, "event": AuditEvent}]}``.

    One query for any number of jobs (a detail page, or a page of the list).
    """
    job_ids = list(job_ids)
    history: dict[int, list[dict]] = {job_id: [] for job_id in job_ids}
    events = AuditEvent.objects.filter(
        target_table=AUDIT_TABLE,
        action=AuditEvent.Action.RETRY,
        target_ids__overlap=job_ids,
    ).order_by("-created_at", "-id")
    for event in events:
        original = event.details.get("retry_of")
        copy = event.details.get("new_job_id")
        if original in history:
            history[original].append({"kind": "retried_as", "other": copy, "event": event})
        if copy in history:
            history[copy].append({"kind": "retry_of", "other": original, "event": event})
    return history
