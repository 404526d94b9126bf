"""The queue's health (SPEC.md §9), as Sidekiq's and Oban's dashboards show it.

``health(scope)`` counts the jobs of the scope (the user's sites, narrowed to the chosen
site) and returns plain data: counts by status (capped at the lists' ``COUNT_CAP``, so a
table of millions costs a bounded index read, all in one statement), the oldest pending
job, the jobs pending longer than ``AIMONITOR_STUCK_MINUTES`` ("stuck"), the jobs
finished per minute over the last hour, and today's failures by event type. A fixed
number of queries, each served by an index of ``ai_tables.sql``.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncMinute
from django.utils import timezone

from aimonitor.db_router import reading
from aimonitor.listing import COUNT_CAP
from aimonitor.localtime import local_today
from aimonitor.models import TriggerJob
from aimonitor.scope import Scope

logger = logging.getLogger(__name__)

PENDING = TriggerJob.Status.PENDING
FAILED = TriggerJob.Status.FAILED
SPARK_MINUTES = 60
STUCK = "stuck"  # beside the statuses in the one counting statement


def capped_counts(querysets: dict[str, QuerySet]) -> dict[str, int]:
    """``{name: rows of its queryset}``, each count stopping one past ``COUNT_CAP``.

    One statement for all of them (a capped subquery each): one round trip.
    """
    parts, params = [], []
    for index, queryset in enumerate(querysets.values()):
        capped = queryset.order_by().values("pk")[: COUNT_CAP + 1]
        try:
            sql, sql_params = capped.query.sql_with_params()
        except EmptyResultSet:  # a user without sites: nothing to count
            return dict.fromkeys(querysets, 0)
        parts.append(f"(SELECT count(*) FROM ({sql}) AS capped_{index})")
        params.extend(sql_params)
    with reading(TriggerJob).cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts), params)
        return dict(zip(querysets, cursor.fetchone(), strict=True))


def stuck_before(now: dt.datetime) -> dt.datetime:
    """Jobs still pending that were created before this are stuck."""
    return now - dt.timedelta(minutes=settings.STUCK_MINUTES)


def health(scope: Scope, now: dt.datetime | None = None) -> dict:
    """The queue's figures over the jobs of ``scope``."""
    now = now or timezone.now()
    jobs = TriggerJob.objects.visible_to(scope).order_by()
    pending = jobs.filter(status=PENDING)
    counted = capped_counts(
        {
            **{status: jobs.filter(status=status) for status in TriggerJob.Status.values},
            STUCK: pending.filter(created_at__lt=stuck_before(now)),
        }
    )
    counts = [
        {"status": status, "label": label, "count": counted[status]}
        for status, label in TriggerJob.Status.choices
    ]
    oldest = pending.order_by("created_at", "id").values("pk", "created_at").first()
    this_minute = now.replace(second=0, microsecond=0)
    start = this_minute - dt.timedelta(minutes=SPARK_MINUTES - 1)
    finished = dict(
        jobs.filter(finished_at__gte=start, finished_at__lte=now)
        .annotate(minute=TruncMinute("finished_at"))
        .values_list("minute")
        .annotate(n=Count("pk"))
        .values_list("minute", "n")
    )
    per_minute = [
        {"minute": minute, "count": finished.get(minute, 0)}
        for minute in (start + dt.timedelta(minutes=i) for i in range(SPARK_MINUTES))
    ]
    today = local_today()
    failures = list(
        jobs.on_local_day(today)
        .filter(status=FAILED)
        .values("event_type")
        .annotate(count=Count("pk"))
        .order_by("-count", "event_type")
    )
    return {
        "counts": counts,
        "count_cap": COUNT_CAP,
        "oldest_pending": (
            {
                "id": oldest["pk"],
                "created_at": oldest["created_at"],
                "age_seconds": max(0, int((now - oldest["created_at"]).total_seconds())),
            }
            if oldest
            else None
        ),
        "stuck": counted[STUCK],
        "stuck_minutes": settings.STUCK_MINUTES,
        "finished_per_minute": per_minute,
        "finished_last_hour": sum(point["count"] for point in per_minute),
        "failures_today": failures,
        "today": today,
    }
