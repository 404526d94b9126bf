"""The queue's health at the top of /jobs/ (SPEC.md §9): the figures of
``aimonitor.figures.queue`` with their links. The page renders it once;
``/jobs/health/`` (the ``health`` partial) refreshes it every 30 s, failing alone.
Each figure links to the list narrowed to it (``list_params``).
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.db import DatabaseError, transaction
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.generic import TemplateView

from aimonitor.figures.queue import FAILED, health
from aimonitor.listing import FilterForm, HtmxTemplateMixin
from aimonitor.scope import Scope

logger = logging.getLogger(__name__)


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
    scope = Scope.for_user(user).narrow(site)
    try:
        with transaction.atomic():  # a failed query must not poison the page's others
            figures = health(scope)
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
        form.scope()  # a site outside the user's sites: 403
        context = self.get_context_data(**health_context(request.user, form.cleaned_data["site"]))
        return self.render_to_response(context)
