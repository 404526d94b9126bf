"""The failures page ``/failures/``: what is failing, since when and why (SPEC.md §8).

The range's failures (status failed, timeout or circuit_open) in the user's scope,
grouped by (app_type, status, error signature), largest group first, then the one
seen last (``aimonitor.figures.failures``, read from the failure summaries of
``aimonitor.summaries.failures``). Each group links to the alerts list narrowed
to its calls, and its pending alerts are acknowledged or ignored through the alerts
page's bulk action (same cap, confirmation, audit and refusals).
"""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.http import JsonResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import TemplateView

from aimonitor.figures.failures import FailureGroups, failure_groups
from aimonitor.listing import (
    LIST_RESULTS,
    CodeField,
    FilterForm,
    HtmxTemplateMixin,
    csv_file_name,
    stream_csv,
)
from aimonitor.models import ALERT_STATUSES, RunLog
from aimonitor.timerange import TimeRangeForm
from dashboard.overview import DashboardEncoder
from dashboard.templatetags.dashboard_charts import SPARK_BARS, spark_bins


class FailureFilterForm(TimeRangeForm, FilterForm):
    """``site``, ``app_type``, ``status`` and the time range (24h unless chosen)."""

    app_type = CodeField(label=_("App type"), max_length=64)
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("any failure"))] + [(s, RunLog.Status(s).label) for s in ALERT_STATUSES],
    )

    date_from = date_to = page = page_size = None
    default_range = "24h"
    field_order = ["app_type", "status", "site"]


class FailureListView(LoginRequiredMixin, HtmxTemplateMixin, TemplateView):
    template_name = "dashboard/failures.html"
    htmx_partial = LIST_RESULTS
    http_method_names = ["get", "head", "options"]

    def get_form(self) -> FailureFilterForm:
        """The filter form bound to the query string."""
        return FailureFilterForm(self.request.GET, user=self.request.user)

    def get_groups(self, form: FailureFilterForm) -> FailureGroups:
        data = form.cleaned_data
        status = data.get("status")
        return failure_groups(
            form.scope(),
            form.time_range,
            app_type=data.get("app_type") or None,
            statuses=[status] if status else None,
            # The page draws sparklines of at most SPARK_BARS bars; JSON lists every hour;
            # CSV has no counts per hour.
            most_bins={"json": None, "csv": 1}.get(self.request.GET.get("format"), SPARK_BARS),
        )

    def get(self, request, *args, **kwargs):
        form = self.get_form()
        as_json = request.GET.get("format") == "json"
        if not form.is_valid():
            if as_json or request.GET.get("format") == "csv":
                return JsonResponse({"errors": form.errors.get_json_data()}, status=400)
            return self.render_to_response(
                self.get_context_data(form=form, invalid=True), status=400
            )
        form.scope()  # a site outside the user's sites: 403
        found = self.get_groups(form)
        groups, window = found.groups, form.time_range
        if as_json:
            return self.render_json(found, window)
        if request.GET.get("format") == "csv":
            return self.render_csv(groups, form)
        alerts_url = reverse("alerts:list")
        for group in groups:
            group["alerts_url"] = f"{alerts_url}?{urlencode(group_filter(form, group, 'all'))}"
            group["action_filter"] = group_filter(form, group, "pending")
        context = self.get_context_data(
            form=form,
            groups=groups,
            object_list=groups,
            spark_bins=spark_bins(found.bins),
            window=window,
            invalid=False,
        )
        return self.render_to_response(context)

    def render_json(self, found: FailureGroups, window) -> JsonResponse:
        """``{"since", "until", "groups"}``; each group's ``hourly`` lists every hour of
        the range with its count (each hour's time written once, not once per group)."""
        hours = [timezone.localtime(hour_bin.start).isoformat() for hour_bin in found.bins]
        groups = [
            {
                **{key: value for key, value in group.items() if key != "counts"},
                "hourly": [
                    {"hour": hour, "count": n}
                    for hour, n in zip(hours, group["counts"], strict=True)
                ],
            }
            for group in found.groups
        ]
        body = {"since": window.since, "until": window.until, "groups": groups}
        return JsonResponse(body, encoder=DashboardEncoder)

    def render_csv(self, groups: list[dict], form: FailureFilterForm):
        """The groups as a CSV download (defused against formulas like every export)."""
        rows = (
            [" ".join(map(str, g["sites"])) if f == "sites" else g[f] for f in CSV_FIELDS]
            for g in groups
        )
        return stream_csv(csv_file_name("failures", self.request.user, form), CSV_FIELDS, rows)


CSV_FIELDS = [
    "app_type",
    "status",
    "signature",
    "count",
    "pending",
    "sites",
    "first_seen",
    "last_seen",
    "sample_error",
]


def group_filter(form: FailureFilterForm, group: dict, alert_status: str) -> dict:
    """The alerts list's filter that selects exactly this group's calls of the range."""
    params = {
        "alert_status": alert_status,
        "app_type": group["app_type"],
        "status": group["status"],
        "error": group["signature"],
        **form.range_params(),
    }
    if form.cleaned_data.get("site") is not None:
        params["site"] = form.cleaned_data["site"]
    if not form.range_params():
        params.update(form.time_range.params())
    return params
