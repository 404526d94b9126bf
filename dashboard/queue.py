"""The queue's health at the top of /jobs/ (SPEC.md §9), as Sidekiq's and Oban's dashboards.

``health(jobs)`` takes the user's jobs already narrowed to the chosen site and
returns plain data: counts by status (capped at the lists' ``COUNT_CAP``, so a
table of millions costs a bounded index read, all in one statement), the oldest pending job, the jobs
pending longer than ``AIMONITOR_STUCK_MINUTES`` ("stuck"), the jobs finished per
minute over the last hour, and today's failures by event type. A fixed number of
queries, each served by an index of ``ai_tables.sql``. The page renders it once;
``/jobs/health/`` (the ``health`` partial) refreshes it every 30 s, failing alone.
Each figure links to the list narrowed to it (``list_params``).
"""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import EmptyResultSet
from django.db import DatabaseError, transaction
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncMinute
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from aimonitor.db_router import reading
from aimonitor.listing import COUNT_CAP, FilterForm, HtmxTemplateMixin
from aimonitor.localtime import local_today
from aimonitor.models import TriggerJob

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


def health(jobs, now: dt.datetime | None = None) -> dict:
    """The queue's figures over ``jobs`` (scoped, narrowed to a site or not)."""
    now = now or timezone.now()
    jobs = jobs.order_by()
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


def list_params(site: int | None, path: str = "", **params) -> str:
    """The jobs list narrowed to a figure (``params``), keeping the chosen site."""
    if site is not None:
        params = {"site": site, **params}
    path = path or reverse("dashboard:jobs")
    return path + ("?" + urlencode(params) if params else "")


class HealthForm(FilterForm):
    """Only ``site`` (400 when malformed, 403 when not the user's)."""

    date_from = date_to = page = page_size = None


def health_context(user, site: int | None) -> dict:
    """The panel's context: its figures (or ``health_failed``) and links, for ``site``."""
    jobs = TriggerJob.objects.visible_to(user).for_site(site)
    try:
        with transaction.atomic():  # a failed query must not poison the page's others
            figures = health(jobs)
    except DatabaseError as error:
        logger.warning("Queue health unavailable: %s", error)
        return {"health": None, "health_failed": True, "health_url": health_url(site)}
    for row in figures["counts"]:
        row["url"] = list_params(site, status=row["status"])
    for row in figures["failures_today"]:
        row["url"] = list_params(
            site,
            status=FAILED,
            event_type=row["event_type"],
            date_from=figures["today"].isoformat(),
        )
    figures["stuck_url"] = list_params(site, stuck="yes")
    return {"health": figures, "health_failed": False, "health_url": health_url(site)}


def health_url(site: int | None) -> str:
    return list_params(site, reverse("dashboard:jobs_health"))


class HealthPanelView(LoginRequiredMixin, HtmxTemplateMixin, TemplateView):
    """``/jobs/health/``: the panel alone, what its ``hx-get`` polls."""

    template_name = "dashboard/jobs.html"
    http_method_names = ["get", "head", "options"]

    def get_template_names(self) -> list[str]:
        return [f"{self.template_name}#health"]

    def get(self, request, *args, **kwargs):
        form = HealthForm(request.GET, user=request.user)
        if not form.is_valid():
            context = self.get_context_data(form=form, invalid=True)
            return TemplateResponse(request, "aimonitor/form_errors.html", context, status=400)
        form.check_site_access()
        context = self.get_context_data(**health_context(request.user, form.cleaned_data["site"]))
        return self.render_to_response(context)
