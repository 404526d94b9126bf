"""Retrying trigger jobs (SPEC.md §4, §9): a retry is a new, forced, pending copy of a job.

The job page, the bulk retry on the jobs list and the Django admin action all call
``retry_jobs`` (or its one-job form ``retry_job``), so they check the same
permission, scope and rules and leave the same audit trail: one ``AuditEvent`` per
original job, ``target_ids=[original, copy]``, details
``{"retry_of": original, "new_job_id": copy}``.

The rules (§9): a ``pending`` or ``running`` job has not finished, so it is never
retried (it would run twice); a job retried before is left out unless the caller
passes ``again_ok`` (the operator's explicit tick). ``retry_job`` refuses (409)
where ``retry_jobs`` leaves out and counts.

How "already retried" is known: the console table ``JobRetry`` (original → copy,
numbered per original), written in the retry's transaction and backfilled from the
audit trail by migration 0006. The audit trail stays the history (who, when), but
answering "retried?" from it means a GIN overlap over every retry event, which no
index can turn into a semi-join of the jobs list at 2.5 M jobs; ``JobRetry`` is
exact (one row per copy, never edited) and its unique (original, generation) index
serves both the ``retried=yes|no`` filter (an EXISTS per row) and the race: the
claim is an ``INSERT … ON CONFLICT DO NOTHING`` of the next generation, so two
operators retrying the same job at once create one copy — the second waits on the
index until the first commits, then finds its generation taken and leaves it out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from aimonitor.models import AuditEvent, JobRetry, TriggerJob
from aimonitor.operations import BULK_LIMIT, JOBS_TABLE
from aimonitor.operations.once import claim_once, claimed
from aimonitor.operations.refusals import Conflict, TooMany
from aimonitor.permissions import RETRY_JOB, require
from aimonitor.scope import Scope

# The columns a retry copies from the original job.
COPIED_FIELDS = ("event_type", "member_id", "site_id", "connector_type", "payload", "app_chain")
# Jobs that have not finished: a retry would run them twice.
UNFINISHED = (TriggerJob.Status.PENDING, TriggerJob.Status.RUNNING)


@dataclass(frozen=True)
class Retried:
    """What a retry did: ``{original id: new job id}``, and the jobs it left out.

    ``repeated`` is True when the one-time key had been used already: nothing new
    was created and ``new_ids`` are the jobs the first submit created.
    ``already_retried`` (``{original: its newest copy}``) and ``unfinished``
    (pending or running) are the chosen jobs left out by the rules.
    """

    new_ids: dict[int, int] = field(default_factory=dict)
    repeated: bool = False
    already_retried: dict[int, int | None] = field(default_factory=dict)
    unfinished: list[int] = field(default_factory=list)


def retry_job(user, job: TriggerJob, *, key: str | None = None, again_ok: bool = False) -> Retried:
    """Retry one job, or refuse (``Conflict``, 409) saying why; a repeated ``key`` is a no-op."""
    return retry_jobs(user, [job.pk], key=key, again_ok=again_ok, refuse_left_out=True)


def retry_jobs(
    user,
    job_ids: Iterable[int],
    *,
    key: str | None = None,
    again_ok: bool = False,
    refuse_left_out: bool = False,
) -> Retried:
    """Copy each visible, finished job of ``job_ids`` as a forced, pending job, audited.

    Jobs outside the user's sites are left out (the caller looked them up in the
    user's scope); so are unfinished jobs, and jobs retried before unless
    ``again_ok``. With ``refuse_left_out`` a left-out job raises ``Conflict``
    instead (and nothing is written). ``key`` (a one-time form key) is claimed in
    the same transaction as the inserts, so a double submit inserts once.
    """
    require(user, RETRY_JOB)
    job_ids = sorted({int(job_id) for job_id in job_ids})
    if len(job_ids) > BULK_LIMIT:
        raise TooMany(
            _("%(count)s jobs selected; at most %(limit)s can be retried at once.")
            % {"count": len(job_ids), "limit": BULK_LIMIT}
        )
    with transaction.atomic():
        if key:
            token = claim_once(key, "retry", user)
            if token is None:
                first = claimed(key)
                done = first.result.get("new_ids", {}) if first else {}
                return Retried({int(k): v for k, v in done.items()}, repeated=True)
        originals = list(
            TriggerJob.objects.visible_to(Scope.for_user(user))
            .filter(pk__in=job_ids)
            .only("pk", "status", *COPIED_FIELDS)
            .order_by("pk")
        )
        # The scope again, per row: this is the last check before the write.
        originals = [job for job in originals if Scope.for_user(user).sees(job.site_id)]
        unfinished = [job.pk for job in originals if job.status in UNFINISHED]
        finished = [job for job in originals if job.status not in UNFINISHED]
        latest = latest_retries(job.pk for job in finished)
        if not again_ok:
            finished = [job for job in finished if job.pk not in latest]
        won = claim_generations(finished, latest)
        already = {} if again_ok else {pk: copy for pk, (_gen, copy) in latest.items()}
        # Lost races: another transaction claimed the same generation and committed first.
        lost = [job.pk for job in finished if job.pk not in won]
        already.update({pk: copy for pk, (_gen, copy) in latest_retries(lost).items()})
        if refuse_left_out and (unfinished or already):
            raise refusal(originals[0], already)
        retried = [job for job in finished if job.pk in won]
        now = timezone.now()
        copies = TriggerJob.objects.bulk_create([copy_of(job, now) for job in retried])
        new_ids = {job.pk: copy.pk for job, copy in zip(retried, copies, strict=True)}
        link_copies(new_ids, won)
        for job in retried:
            AuditEvent.objects.record(
                actor=user,
                action=AuditEvent.Action.RETRY,
                target_table=JOBS_TABLE,
                target_ids=[job.pk, new_ids[job.pk]],
                site_id=job.site_id,
                details={"retry_of": job.pk, "new_job_id": new_ids[job.pk]},
            )
        if key:
            token.result = {"new_ids": {str(k): v for k, v in new_ids.items()}}
            if len(new_ids) == 1:
                token.result["new_job_id"] = next(iter(new_ids.values()))
            token.save(update_fields=["result"])
    return Retried(new_ids, already_retried=already, unfinished=unfinished)


def copy_of(job: TriggerJob, now) -> TriggerJob:
    """The unsaved retry of ``job``: its copied fields, forced and pending."""
    return TriggerJob(
        **{name: getattr(job, name) for name in COPIED_FIELDS},
        is_forced=True,
        status=TriggerJob.Status.PENDING,
        created_at=now,
    )


def refusal(job: TriggerJob, already: dict[int, int | None]) -> Conflict:
    """Why one job may not be retried now."""
    if job.pk in already:
        return Conflict(
            _(
                "Job #%(id)s was already retried as #%(copy)s. To retry it again, tick "
                "“Retry again” and confirm."
            )
            % {"id": job.pk, "copy": already[job.pk]}
        )
    return Conflict(
        _(
            "Job #%(id)s is %(status)s: it has not finished, so a retry would run it twice. "
            "Retry it once it has failed or succeeded."
        )
        % {"id": job.pk, "status": TriggerJob.Status(job.status).label}
    )


def latest_retries(job_ids: Iterable[int]) -> dict[int, tuple[int, int | None]]:
    """``{original id: (its newest generation, that copy's id)}`` for the retried ones."""
    job_ids = list(job_ids)
    if not job_ids:
        return {}
    rows = (
        JobRetry.objects.filter(original_id__in=job_ids)
        .order_by("original_id", "-generation")
        .distinct("original_id")
        .values_list("original_id", "generation", "copy_id")
    )
    return {original: (generation, copy) for original, generation, copy in rows}


def claim_generations(jobs, latest: dict[int, tuple[int, int | None]]) -> dict[int, int]:
    """Claim each job's next retry generation: ``{original id: generation}`` of those won.

    One ``INSERT … ON CONFLICT DO NOTHING``: a concurrent claim of the same
    generation waits on the unique index, and whoever commits second gets nothing.
    """
    if not jobs:
        return {}
    table = JobRetry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'INSERT INTO "{table}" (original_id, generation, site_id, created_at) '
            "SELECT original_id, generation, site_id, now() "
            "FROM unnest(%s::bigint[], %s::integer[], %s::bigint[]) "
            "AS claim (original_id, generation, site_id) "
            "ON CONFLICT (original_id, generation) DO NOTHING RETURNING original_id, generation",
            [
                [job.pk for job in jobs],
                [latest.get(job.pk, (0, None))[0] + 1 for job in jobs],
                [job.site_id for job in jobs],
            ],
        )
        return dict(cursor.fetchall())


def link_copies(new_ids: dict[int, int], claimed: dict[int, int]) -> None:
    """Write each claimed generation's copy id (same transaction as the claim)."""
    if not new_ids:
        return
    table = JobRetry._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f'UPDATE "{table}" AS retry SET copy_id = link.copy_id '
            "FROM unnest(%s::bigint[], %s::integer[], %s::bigint[]) "
            "AS link (original_id, generation, copy_id) "
            "WHERE retry.original_id = link.original_id AND retry.generation = link.generation",
            [list(new_ids), [claimed[pk] for pk in new_ids], list(new_ids.values())],
        )


def retried_filter(retried: bool) -> Q:
    """``Q`` for jobs that were (``True``) or were never (``False``) retried."""
    exists = Exists(JobRetry.objects.filter(original_id=OuterRef("pk")))
    return Q(exists) if retried else ~Q(exists)


def classify(user, job_ids: Iterable[int]) -> dict[str, int]:
    """How a retry of ``job_ids`` would go now: ``{"retry", "already_retried", "unfinished"}``.

    One query; what the bulk confirmation shows before the operator confirms.
    """
    counts = (
        TriggerJob.objects.visible_to(Scope.for_user(user))
        .filter(pk__in=list(job_ids))
        .aggregate(
            unfinished=Count("pk", filter=Q(status__in=UNFINISHED)),
            already_retried=Count("pk", filter=~Q(status__in=UNFINISHED) & retried_filter(True)),
            retry=Count("pk", filter=~Q(status__in=UNFINISHED) & retried_filter(False)),
        )
    )
    return counts


def retry_history(job_ids: Iterable[int]) -> dict[int, list[dict]]:
    """``{job id: [{"kind": "retried_as"|"retry_of", "other": id, "event": AuditEvent}]}``.

    One query for any number of jobs (a detail page, or a page of the list).
    """
    job_ids = list(job_ids)
    history: dict[int, list[dict]] = {job_id: [] for job_id in job_ids}
    events = AuditEvent.objects.filter(
        target_table=JOBS_TABLE,
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
