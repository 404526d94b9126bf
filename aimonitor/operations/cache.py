"""Invalidating cached AI results (SPEC.md §4): ``status = 'invalidated'``.

The cache page (site, optional cache type and member id) and the Django admin
action (selected entries) both go through ``_invalidate``: one UPDATE that
changes exactly the matching entries not yet invalidated and returns their ids,
and one ``AuditEvent`` per site listing those ids, in one transaction.

The page's confirmation carries the ids its preview counted (at most
``CONFIRM_LIMIT``), and ``invalidate_cache(..., ids=...)`` changes only those: an
entry that began to match after the preview is not invalidated (as the alerts'
and the jobs' bulk confirmations do).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.core.exceptions import EmptyResultSet
from django.db import connection, transaction

from aimonitor.models import AuditEvent, CacheEntry
from aimonitor.operations import CACHE_TABLE
from aimonitor.permissions import INVALIDATE_CACHE, require
from aimonitor.scope import Scope

PREVIEW_SAMPLE_SIZE = 10
# A confirmation carries the ids it counted, in one input: at most this many.
CONFIRM_LIMIT = 10_000


@dataclass(frozen=True)
class Invalidated:
    """How many entries the UPDATE changed, and which."""

    count: int
    ids: list[int] = field(default_factory=list)


def matching_entries(user, site_id: int, cache_type: str | None = None, member_id=None):
    """The user's entries of ``site_id`` (and cache type / member) not yet invalidated."""
    scope = Scope.for_user(user)
    scope.require(site_id)
    entries = CacheEntry.objects.visible_to(scope.narrow(site_id))
    if cache_type:
        entries = entries.filter(cache_type=cache_type)
    if member_id is not None:
        # target_id is text: the member id as the AI service writes it.
        entries = entries.filter(target_id=str(member_id))
    return entries.exclude(status=CacheEntry.Status.INVALIDATED)


def preview_invalidation(
    user, site_id: int, cache_type: str | None = None, member_id=None
) -> tuple[list[int], list[CacheEntry]]:
    """The ids an invalidation would change now (``CONFIRM_LIMIT`` + 1 at most), and ten."""
    require(user, INVALIDATE_CACHE)
    entries = matching_entries(user, site_id, cache_type, member_id)
    sample = list(entries.defer("result_json").newest_first()[:PREVIEW_SAMPLE_SIZE])
    ids = list(entries.order_by("pk").values_list("pk", flat=True)[: CONFIRM_LIMIT + 1])
    return ids, sample


def invalidate_cache(
    user, site_id: int, cache_type: str | None = None, member_id=None, *, ids=None
) -> Invalidated:
    """Invalidate the site's matching entries (only ``ids`` of them, when given).

    The count is what the UPDATE changed.
    """
    require(user, INVALIDATE_CACHE)
    entries = matching_entries(user, site_id, cache_type, member_id)
    if ids is not None:
        entries = entries.filter(pk__in=[int(i) for i in ids])
    criteria = {"site_id": site_id, "cache_type": cache_type or None, "member_id": member_id}
    return _invalidate(user, entries, criteria)


def invalidate_entries(user, entry_ids: Iterable[int]) -> Invalidated:
    """Invalidate chosen entries (the admin action), within the user's sites."""
    require(user, INVALIDATE_CACHE)
    entries = CacheEntry.objects.visible_to(Scope.for_user(user)).filter(
        pk__in=[int(i) for i in entry_ids]
    )
    return _invalidate(user, entries, {"selected": True})


def _invalidate(user, entries, criteria: dict) -> Invalidated:
    """UPDATE the entries not yet invalidated, RETURNING ids; audit per site."""
    try:
        subquery, params = entries.values("pk").query.sql_with_params()
    except EmptyResultSet:  # no sites, or no ids: nothing can match
        return Invalidated(0)
    table = CacheEntry._meta.db_table
    invalidated = CacheEntry.Status.INVALIDATED
    with transaction.atomic(), connection.cursor() as cursor:
        # Re-checked per row under its lock: a concurrent invalidation of the same
        # entry makes this one skip it, so the count is what really changed.
        cursor.execute(
            f'UPDATE "{table}" SET status = %s '
            f"WHERE id IN ({subquery}) AND status <> %s "
            f"RETURNING id, site_id",
            [invalidated, *params, invalidated],
        )
        changed = cursor.fetchall()
        count = cursor.rowcount
        by_site: dict[int, list[int]] = {}
        for entry_id, site_id in changed:
            by_site.setdefault(site_id, []).append(entry_id)
        for site_id, ids in sorted(by_site.items()):
            AuditEvent.objects.record(
                actor=user,
                action=AuditEvent.Action.INVALIDATE,
                target_table=CACHE_TABLE,
                target_ids=ids,
                site_id=site_id,
                details={**criteria, "count": len(ids)},
            )
    return Invalidated(count, sorted(entry_id for entry_id, _site in changed))
