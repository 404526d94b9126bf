"""The dashboard ``/``: one page of panels, one HTMX fragment per panel, and the JSON.

Every panel renders the plain data of its figure function (``aimonitor.figures``);
``/dashboard.json`` returns the same data. A panel whose query fails (a timeout,
a lost connection) shows "unavailable — retrying" on its own and keeps polling;
the rest of the page stays live.
"""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import urlencode

from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, transaction
from django.http import Http404, JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView, View

from aimonitor import summaries
from aimonitor.figures import calls as figures
from aimonitor.figures.incidents import open_incidents
from aimonitor.listing import FilterForm
from aimonitor.models import RunLog
from aimonitor.scope import Scope
from aimonitor.timerange import TimeRangeForm

logger = logging.getLogger(__name__)

TEMPLATE = "dashboard/overview.html"
# Panel names are the figure groups, their named partials and their JSON keys.
# "range" (the chosen time range: its totals and the apps table) answers two JSON keys.
PANELS = (
    "today",
    "range",
    "trend_7d",
    "app_distribution",
    "app_health",
    "budget",
    "recent_alerts",
    "incidents",
)


class DashboardForm(TimeRangeForm, FilterForm):
    """``site`` (400 when malformed, 403 when not the user's) and the time range (24h
    unless chosen): no dates, no paging."""

    date_from = date_to = page = page_size = None
    default_range = "24h"


class DashboardMixin(LoginRequiredMixin):
    """Validates ``site`` and computes the figures of the chosen scope (``form.scope()``)."""

    http_method_names = ["get", "head", "options"]

    def get_form(self) -> DashboardForm:
        """The form bound to the query string."""
        return DashboardForm(self.request.GET, user=self.request.user)

    def get_figures(self, panel: str, scope: Scope):
        """One panel's plain data, straight from its figure function."""
        if panel == "range":
            return figures.range_figures(scope, self.form.time_range)
        if panel == "budget":
            # Global by definition (SPEC.md §4): the whole business's token budget.
            return figures.budget()
        if panel == "incidents":
            # The notifier's open incidents in scope (SPEC.md §10).
            return open_incidents(scope)
        return getattr(figures, panel)(scope)

    def get_panels(self, panels, scope: Scope) -> tuple[dict, set[str]]:
        """``({panel: data}, {failed panels})``; a failing query fails only its own panel."""
        data, failed = {}, set()
        with summaries.refreshed():  # the rollups are brought up to date once per request
            for panel in panels:
                try:
                    # Its own transaction (a savepoint inside one), so a failed query
                    # does not poison the panels after it.
                    with transaction.atomic():
                        data[panel] = self.get_figures(panel, scope)
                except DatabaseError as error:
                    logger.warning("Dashboard panel %s unavailable: %s", panel, error)
                    failed.add(panel)
        return data, failed


class DashboardView(DashboardMixin, TemplateView):
    """The whole page, every panel rendered once; HTMX then refreshes each on its own."""

    template_name = TEMPLATE

    def get(self, request, *args, **kwargs):
        self.form = self.get_form()
        if not self.form.is_valid():
            return self.render_to_response(self.get_context_data(form=self.form), status=400)
        scope = self.form.scope()  # a site outside the user's sites: 403
        site = self.form.cleaned_data["site"]
        data, failed = self.get_panels(self.get_panel_names(), scope)
        context = self.get_context_data(form=self.form, site=site, failed=failed, **data)
        return self.render_to_response(context)

    def get_panel_names(self) -> tuple[str, ...]:
        """The panels this response renders."""
        return PANELS

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        # Each panel polls its own fragment URL, keeping the chosen site and range.
        form = kwargs.get("form")
        params = {**(form.range_params() if form is not None else {})}
        if kwargs.get("site"):
            params["site"] = kwargs["site"]
        query = f"?{urlencode(params)}" if params else ""
        context["panel_urls"] = {
            panel: reverse("dashboard:panel", args=[panel]) + query for panel in PANELS
        }
        # Inline triage reuses the alerts page's row; after a plain (non-HTMX) post it
        # returns to this page, not to the fragment URL.
        context["dashboard_url"] = reverse("dashboard:index") + query
        context["range_query"] = query[1:]  # for the apps table's links to runs and failures
        if kwargs.get("recent_alerts"):
            # All pending by definition; model instances give the row its labels and state.
            context["recent_alert_rows"] = [RunLog(**alert) for alert in kwargs["recent_alerts"]]
        return context


class PanelView(DashboardView):
    """One panel as its named partial: what each panel's ``hx-get`` asks for."""

    def get_panel_names(self) -> tuple[str, ...]:
        if self.kwargs["panel"] not in PANELS:
            raise Http404("No such panel.")
        return (self.kwargs["panel"],)

    def get_template_names(self) -> list[str]:
        """The panel's partial, or the errors partial for bad input."""
        partial = self.kwargs["panel"] if self.form.is_valid() else "invalid"
        return [f"{self.template_name}#{partial}"]


class DashboardEncoder(DjangoJSONEncoder):
    """Times in the console's zone, as ISO 8601 with their offset."""

    def default(self, o):
        if isinstance(o, dt.datetime):
            return timezone.localtime(o).isoformat()
        return super().default(o)


class DashboardJsonView(DashboardMixin, View):
    """``/dashboard.json``: every figure, with the reference's keys."""

    def get(self, request, *args, **kwargs):
        form = self.form = self.get_form()
        if not form.is_valid():
            return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
        scope = form.scope()  # a site outside the user's sites: 403
        # All or nothing: a failing query answers 503 (DatabaseUnavailableMiddleware).
        with summaries.refreshed():
            data = {panel: self.get_figures(panel, scope) for panel in PANELS}
        body = {**data.pop("today"), **data.pop("range"), **data}
        return JsonResponse(body, encoder=DashboardEncoder)
