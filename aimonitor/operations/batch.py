"""Batch runs: a paid re-run of AI apps for a list of members (SPEC.md §4 Batch run).

Two steps. ``estimate_batch`` prices the run and keeps it, under a fresh batch id,
as a ``PendingBatch`` row tied to the user's session (one row per estimate: parallel
estimates in one session never overwrite each other, and every server process sees
them, so a confirm may land on any of them). ``confirm_batch`` turns it into one pending
``ai_trigger_jobs`` row per member, exactly once: the batch id is claimed as a
``OnceToken`` in the same transaction as the insert, so two confirms sent at the
same moment (two tabs, a double click, two processes) create one set of jobs.
``cancel_batch`` claims the same key, so a cancelled batch can never be confirmed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aimonitor import pricing, summaries
from aimonitor.figures.calls import budget
from aimonitor.models import AuditEvent, PendingBatch, TriggerJob
from aimonitor.operations import JOBS_TABLE
from aimonitor.operations.once import claim_once, claimed
from aimonitor.operations.refusals import Invalid, Refused
from aimonitor.permissions import RUN_BATCH, require
from aimonitor.scope import Scope

MAX_MEMBERS = 5000
# A session keeps at most this many unconfirmed estimates (the oldest go first).
MAX_PENDING_PER_SESSION = 20
# Estimates expired this long ago are deleted (until then a confirm says "expired").
FORGET_AFTER = dt.timedelta(days=1)
EVENT_TYPE = "admin_batch"
CONFIRM_ACTION = "batch"
CANCEL_ACTION = "batch_cancel"
BATCH_ID_RE = re.compile(r"^[0-9a-f]{32}$")
JOB_STATUSES = ("pending", "running", "success", "failed")


class BatchRefused(Refused):
    """A confirm or cancel that must create nothing; ``reason`` says why.

    400 for a batch that is unknown, expired or over budget without the tick; 409 for
    one already used or cancelled.
    """

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    USED = "used"
    OVER_BUDGET = "over_budget"

    MESSAGES = {
        UNKNOWN: _("This batch is unknown (or belongs to another session). Nothing was created."),
        EXPIRED: _("This batch’s estimate expired before it was confirmed. Nothing was created."),
        CANCELLED: _("This batch was cancelled. Nothing was created."),
        USED: _("This batch was already used: its jobs exist, nothing more was created."),
        OVER_BUDGET: _(
            "This batch is over today’s remaining budget: tick “Run it anyway” to confirm."
        ),
    }

    CONFLICTS = (CANCELLED, USED)

    def __init__(self, reason: str):
        super().__init__(self.MESSAGES[reason], 409 if reason in self.CONFLICTS else 400)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class BatchEstimate:
    """What a pending batch would do and cost, beside today's remaining budget."""

    batch_id: str
    site_id: int
    app_types: list[str]
    member_ids: list[int]
    duplicates: int
    expires_at: dt.datetime
    calls: int
    tokens: int
    cost: Decimal | None
    daily_limit: int
    daily_used: int
    remaining: int
    # Tokens per call of each app: its mean over the last 7 days in the user's scope,
    # or AIMONITOR_AVG_TOKENS_PER_CALL for an app without calls there (SPEC.md §8).
    tokens_per_call: dict = dataclasses.field(default_factory=dict)
    apps_without_history: list = dataclasses.field(default_factory=list)

    @property
    def left_after(self) -> int:
        """The daily budget left once this batch has run (negative: over)."""
        return self.remaining - self.tokens

    @property
    def over_budget(self) -> bool:
        return self.tokens > self.remaining

    @property
    def member_count(self) -> int:
        return len(self.member_ids)


@dataclasses.dataclass(frozen=True)
class ConfirmedBatch:
    batch_id: str
    site_id: int
    job_ids: list[int]


def daily_tokens_used() -> int:
    """Today's global token use, as the dashboard's budget panel counts it."""
    # The budget is the whole business's (every site), so this is not site-scoped.
    return budget()["daily_used"]


def _session_key(session) -> str:
    if not session.session_key:
        session.save()  # a session without a key yet gets one
    return session.session_key


def _entry(row: PendingBatch) -> dict:
    return {
        "site_id": row.site_id,
        "app_types": list(row.app_types),
        "member_ids": list(row.member_ids),
        "duplicates": row.duplicates,
        "expires_at": row.expires_at.timestamp(),
        "tokens_per_call": row.tokens_per_call,
    }


def _expired(entry: dict, now: dt.datetime) -> bool:
    return entry["expires_at"] <= now.timestamp()


def tokens_per_call(user, app_types: list[str]) -> dict[str, int | None]:
    """Each app's mean tokens per call over the last 7 days in ``user``'s sites (rollups
    for closed hours); None for an app without calls there."""
    now = timezone.now()
    per_app = summaries.sums(
        Scope.for_user(user), {"week": (now - dt.timedelta(days=7), now)}, by="app"
    )
    means = {}
    for app in app_types:
        row = per_app.get(app)
        means[app] = round(row["tokens"] / row["calls"]) if row and row["calls"] else None
    return means


def _describe(batch_id: str, entry: dict) -> BatchEstimate:
    """The estimate of a stored batch, with today's budget as it is now."""
    members = len(entry["member_ids"])
    calls = len(entry["app_types"]) * members
    means = entry.get("tokens_per_call") or {}
    per_call = {
        app: means[app] if means.get(app) is not None else settings.AVG_TOKENS_PER_CALL
        for app in entry["app_types"]
    }
    tokens = sum(per_call.values()) * members
    cost = pricing.total_cost(
        {app: per_call[app] * members for app in per_call}, pricing.price_list()
    )
    used = daily_tokens_used()
    return BatchEstimate(
        batch_id=batch_id,
        site_id=entry["site_id"],
        app_types=list(entry["app_types"]),
        member_ids=list(entry["member_ids"]),
        duplicates=entry.get("duplicates", 0),
        expires_at=dt.datetime.fromtimestamp(entry["expires_at"], tz=dt.UTC),
        calls=calls,
        tokens=tokens,
        cost=None if cost is None else Decimal(str(cost)),
        daily_limit=settings.DAILY_TOKEN_LIMIT,
        daily_used=used,
        remaining=max(settings.DAILY_TOKEN_LIMIT - used, 0),
        tokens_per_call=per_call,
        apps_without_history=[app for app in entry["app_types"] if means.get(app) is None],
    )


def estimate_batch(
    user,
    session,
    *,
    site_id: int,
    app_types: list[str],
    member_ids: list[int],
    duplicates: int = 0,
) -> BatchEstimate:
    """Price a batch and keep it for ``session`` under a fresh id (a ``PendingBatch``);
    writes nothing else."""
    require(user, RUN_BATCH)
    Scope.for_user(user).require(site_id)
    if not app_types or not member_ids:
        raise Invalid(_("A batch needs at least one app and one member."))
    if len(member_ids) > MAX_MEMBERS:
        raise Invalid(_("A batch takes at most %(max)s members.") % {"max": MAX_MEMBERS})
    now = timezone.now()
    session_key = _session_key(session)
    PendingBatch.objects.filter(expires_at__lt=now - FORGET_AFTER).delete()
    row = PendingBatch.objects.create(
        batch_id=uuid.uuid4().hex,
        session_key=session_key,
        user=user,
        site_id=site_id,
        app_types=list(app_types),
        member_ids=list(member_ids),
        duplicates=duplicates,
        tokens_per_call=tokens_per_call(user, list(app_types)),
        created_at=now,
        expires_at=now + dt.timedelta(seconds=settings.BATCH_TTL_SECONDS),
    )
    oldest = PendingBatch.objects.filter(session_key=session_key).order_by(
        "-created_at", "-batch_id"
    )[MAX_PENDING_PER_SESSION:]
    PendingBatch.objects.filter(pk__in=list(oldest.values_list("pk", flat=True))).delete()
    return _describe(row.batch_id, _entry(row))


def _refusal_if_claimed(key: str) -> BatchRefused | None:
    """Why a batch whose key is already claimed cannot be confirmed, if it is."""
    token = claimed(key)
    if token is None:
        return None
    return BatchRefused(
        BatchRefused.CANCELLED if token.action == CANCEL_ACTION else BatchRefused.USED
    )


def pending_batch(session, batch_id: str) -> BatchEstimate:
    """The still-confirmable batch ``batch_id`` of this session, or ``BatchRefused``."""
    if not BATCH_ID_RE.match(batch_id or ""):
        raise BatchRefused(BatchRefused.UNKNOWN)
    refusal = _refusal_if_claimed(f"batch:{batch_id}")
    if refusal:
        raise refusal
    row = PendingBatch.objects.filter(
        batch_id=batch_id, session_key=session.session_key or ""
    ).first()
    if row is None:
        raise BatchRefused(BatchRefused.UNKNOWN)
    entry = _entry(row)
    if _expired(entry, timezone.now()):
        raise BatchRefused(BatchRefused.EXPIRED)
    return _describe(batch_id, entry)


def _forget(session, batch_id: str) -> None:
    PendingBatch.objects.filter(batch_id=batch_id).delete()


@transaction.atomic
def _create_jobs(user, estimate: BatchEstimate) -> list[int]:
    """Claim the batch and insert its jobs and audit event, all or nothing."""
    key = f"batch:{estimate.batch_id}"
    token = claim_once(key, CONFIRM_ACTION, user, result={"site_id": estimate.site_id})
    if token is None:
        # Another confirm (or a cancel) won the race; it has committed by now.
        raise _refusal_if_claimed(key) or BatchRefused(BatchRefused.USED)
    now = timezone.now()
    payload = {"batch_id": estimate.batch_id, "requested_by": user.get_username()}
    jobs = TriggerJob.objects.bulk_create(
        TriggerJob(
            site_id=estimate.site_id,
            event_type=EVENT_TYPE,
            member_id=member_id,
            payload=payload,
            app_chain=",".join(estimate.app_types),
            is_forced=True,
            status=TriggerJob.Status.PENDING,
            created_at=now,
        )
        for member_id in estimate.member_ids
    )
    job_ids = [job.id for job in jobs]
    AuditEvent.objects.record(
        actor=user,
        action=AuditEvent.Action.BATCH,
        target_table=JOBS_TABLE,
        target_ids=job_ids,
        site_id=estimate.site_id,
        details={
            "batch_id": estimate.batch_id,
            "apps": estimate.app_types,
            "members": estimate.member_count,
            "estimated_tokens": estimate.tokens,
            "estimated_cost": None if estimate.cost is None else str(estimate.cost),
            "over_budget": estimate.over_budget,
        },
    )
    token.result = {**token.result, "jobs": len(job_ids)}
    token.save(update_fields=["result"])
    return job_ids


def confirm_batch(user, session, batch_id: str, *, over_budget_ok: bool = False) -> ConfirmedBatch:
    """Create the batch's jobs once; refuse (creating nothing) if it cannot be confirmed."""
    require(user, RUN_BATCH)
    estimate = pending_batch(session, batch_id)
    # Access may have changed since the estimate.
    Scope.for_user(user).require(estimate.site_id)
    if estimate.over_budget and not over_budget_ok:
        raise BatchRefused(BatchRefused.OVER_BUDGET)
    job_ids = _create_jobs(user, estimate)
    _forget(session, batch_id)
    return ConfirmedBatch(batch_id=batch_id, site_id=estimate.site_id, job_ids=job_ids)


def cancel_batch(user, session, batch_id: str) -> None:
    """Drop a pending batch for good: its id is claimed, so no confirm can use it."""
    require(user, RUN_BATCH)
    try:
        pending_batch(session, batch_id)
    except BatchRefused as refusal:
        if refusal.reason != BatchRefused.EXPIRED:
            raise
    key = f"batch:{batch_id}"
    with transaction.atomic():
        if claim_once(key, CANCEL_ACTION, user) is None:
            raise _refusal_if_claimed(key) or BatchRefused(BatchRefused.USED)
    _forget(session, batch_id)


def recent_batches(user, limit: int = 10) -> list[dict]:
    """The newest batches in the user's sites, with the live status counts of their jobs.

    Two queries whatever the data size: the audit events, then one aggregate over
    their jobs grouped by ``payload ->> 'batch_id'`` (the expression index).
    """
    events = AuditEvent.objects.filter(action=AuditEvent.Action.BATCH)
    scope = Scope.for_user(user)
    if not scope.is_all_sites:
        events = events.filter(site_id__in=scope.site_ids)
    # Not target_ids: up to 5,000 job ids per batch that the list does not show.
    events = list(
        events.only("created_at", "actor_username", "site_id", "details").order_by(
            "-created_at", "-id"
        )[:limit]
    )
    batch_ids = [event.details.get("batch_id") for event in events]
    counts = {
        row["batch"]: row
        for row in TriggerJob.objects.visible_to(scope)
        .filter(payload__has_key="batch_id")
        .annotate(batch=KT("payload__batch_id"))
        .filter(batch__in=[b for b in batch_ids if b])
        .values("batch")
        .annotate(
            total=Count("id"),
            **{status: Count("id", filter=Q(status=status)) for status in JOB_STATUSES},
        )
    }
    empty = {"total": 0, **dict.fromkeys(JOB_STATUSES, 0)}
    return [
        {
            "batch_id": batch_id,
            "created_at": event.created_at,
            "actor": event.actor_username,
            "site_id": event.site_id,
            "apps": event.details.get("apps", []),
            "members": event.details.get("members", 0),
            "jobs": counts.get(batch_id, empty),
        }
        for batch_id, event in zip(batch_ids, events, strict=True)
    ]
