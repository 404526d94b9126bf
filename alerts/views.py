"""Alert triage pages: the filtered list with bulk actions, and the row actions.

Every write goes through ``aimonitor.operations.alerts.set_alert_status``. The row
markup is the ``alert_row`` partial of ``alerts/alerts.html``; the row actions answer
HTMX with that same row (plus the navigation's pending count, out of band), so any
page that shows the partial (the dashboard's alert panel too) gets inline triage.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Count, Q
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from aimonitor.bulk import BulkActionMixin
from aimonitor.figures.calls import app_health
from aimonitor.listing import MAX_ID, FilteredListView, capped_count
from aimonitor.models import AuditEvent, RunLog
from aimonitor.operations import RUN_LOGS_TABLE
from aimonitor.operations.alerts import TARGET_STATUS, TriageResult, set_alert_status
from aimonitor.operations.refusals import NotFound, NotPermitted, Refused
from aimonitor.permissions import TRIAGE_ALERT
from aimonitor.responses import RefusalMixin
from aimonitor.scope import Scope
from aimonitor.sites import site_choices
from alerts.describe import describe_filter
from alerts.forms import AlertFilterForm

ROW_TEMPLATE = "alerts/alerts.html#alert_row_swap"
REFUSAL_TEMPLATE = "alerts/alerts.html#alert_row_refused"
LAYOUTS = ("list", "compact")  # compact: no bulk checkbox (the dashboard's panel)


def attach_triage_events(alerts) -> None:
    """Set ``alert.triage_event`` (the newest audit event, or None) on each alert: one query."""
    alerts = list(alerts)
    latest = AuditEvent.objects.latest_for(RUN_LOGS_TABLE, [a.id for a in alerts])
    for alert in alerts:
        alert.triage_event = latest.get(alert.id)


def list_url(params: dict | None = None) -> str:
    """The alerts page with these filters."""
    query = urlencode(params or {})
    return reverse("alerts:list") + (f"?{query}" if query else "")


def row_outcome(pk: int, result: TriageResult) -> str:
    """What a row action did to alert ``pk``."""
    state = RunLog.AlertStatus(result.to_status).label
    if result.unchanged:
        return _("Alert #%(id)s was already %(state)s; nothing changed.") % {
            "id": pk,
            "state": state,
        }
    return _("Alert #%(id)s is now %(state)s.") % {"id": pk, "state": state}


class AlertListView(BulkActionMixin, FilteredListView):
    """Failed, timed-out and circuit-open calls; pending ones unless the filter says otherwise.

    POST is the bulk acknowledge / ignore (``aimonitor.bulk``), from this list or from a
    failures group's buttons (``scope=filter`` with the group's filters).
    """

    model = RunLog
    filter_form_class = AlertFilterForm
    template_name = "alerts/alerts.html"
    csv_filename = "alerts.csv"
    bulk_permission = TRIAGE_ALERT
    bulk_actions = [
        ("acknowledge", gettext_lazy("Acknowledge")),
        ("ignore", gettext_lazy("Ignore")),
    ]
    confirm_template = "alerts/bulk_confirm.html"
    too_many_message = gettext_lazy(
        "More than %(limit)s alerts were chosen; a bulk action handles at most "
        "%(limit)s. Narrow the filter and try again. Nothing was changed."
    )
    nothing_chosen_message = gettext_lazy("No alerts were chosen. Nothing was changed.")
    back_label = gettext_lazy("Back to the alerts")
    over_cap_to_list = True
    csv_fields = [
        "id",
        "created_at",
        "site_id",
        "app_type",
        "trigger_type",
        "member_id",
        "status",
        "alert_status",
        "error_message",
        "tokens_used",
        "latency_ms",
    ]

    def get_base_queryset(self):
        """The user's calls, newest first, without the (large, sensitive) texts."""
        return super().get_base_queryset().defer("request_prompt", "response_text")

    def get_form(self) -> AlertFilterForm:
        """The filter form, suggesting the app types of the user's sites."""
        apps = [app["app_type"] for app in app_health(Scope.for_user(self.request.user))]
        return self.filter_form_class(self.request.GET, user=self.request.user, app_types=apps)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        page = kwargs.get("page")
        if page is not None:
            attach_triage_events(page.object_list)
            if page.number == 1:
                # The first page polls for alerts newer than its newest row.
                newest = max((alert.id for alert in page.object_list), default=0)
                context["new_alerts_query"] = urlencode(
                    {**context["filter_params"], "after_id": newest}
                )
        context["bulk_limit"] = self.get_bulk_limit()
        return context

    def bulk_candidates(self):
        """Only alerts: a forged id of another call is left alone."""
        return self.get_base_queryset().alerts()

    def confirm_context(self, ids: list[int]) -> dict:
        """The count, how many are already in the target state, the filter in words."""
        to_status = TARGET_STATUS[self.bulk.cleaned_data["action"]]
        already = (
            RunLog.objects.visible_to(Scope.for_user(self.request.user))
            .filter(pk__in=ids)
            .aggregate(n=Count("pk", filter=Q(alert_status=to_status)))["n"]
        )
        return {
            "count": len(ids),
            "already": already,
            "to_label": RunLog.AlertStatus(to_status).label,
            "description": describe_filter(self.filters, dict(site_choices(self.request.user))),
        }

    def perform_bulk(self, ids: list[int]) -> list[tuple[int, str]]:
        result = set_alert_status(self.request.user, ids, self.bulk.cleaned_data["action"])
        return [(messages.SUCCESS, line) for line in result.summary()]

    def back_url(self) -> str:
        return list_url(self.back_params())


class NewAlertsView(LoginRequiredMixin, View):
    """What the alerts page and the navigation poll every 30 s.

    The alerts matching the list's filters that arrived after the newest row shown
    (``after_id``; not ``since``, which is the time range's), as an "N new" notice (rows never move under the cursor), and the
    navigation's pending count. Bad filters are a 400 with an empty notice.
    """

    template_name = "alerts/alerts.html#new_alerts"

    def get(self, request):
        form = AlertFilterForm(request.GET, user=request.user)
        after_id = request.GET.get("after_id", "")
        valid = form.is_valid() and (after_id == "" or (after_id.isascii() and after_id.isdigit()))
        new = 0
        if valid:
            scope = form.scope()  # a site outside the user's sites: 403
            if after_id:
                newer = RunLog.objects.visible_to(scope).filter(id__gt=min(int(after_id), MAX_ID))
                new = capped_count(form.filter(newer))
        context = {
            "new_alerts": new,
            "new_alerts_query": urlencode({**form.active_params(), "after_id": after_id}),
            "list_query": urlencode(form.active_params()),
        }
        response = TemplateResponse(
            request, self.template_name, context, status=200 if valid else 400
        )
        response["Cache-Control"] = "no-store"
        return response


class AlertActionView(LoginRequiredMixin, RefusalMixin, View):
    """POST /alerts/<id>/ack|ignore|reopen/: one alert changes state.

    HTMX gets the row back (and the nav count out of band); a plain form post is
    redirected to ``next``, the filtered page it came from.
    """

    http_method_names = ["post"]
    action = ""

    def post(self, request, pk: int):
        result = set_alert_status(request.user, [pk], self.action)
        if result.missing:
            raise NotFound(
                _("#%(id)s is not an alert among your sites. Nothing was changed.") % {"id": pk}
            )
        message = row_outcome(pk, result)
        if request.htmx:
            # Only "already …" is worth saying in the row; a change shows in the row itself.
            return self.render_row(pk, message if result.unchanged else "")
        messages.success(request, message)
        return redirect(self.get_next_url())

    def get_next_url(self) -> str:
        """The page to go back to: ``next`` when it is one of ours, else the alerts page."""
        next_url = self.request.POST.get("next", "")
        # A path of ours only: anything else is not a page to go back to.
        if next_url.startswith("/") and url_has_allowed_host_and_scheme(
            next_url,
            allowed_hosts={self.request.get_host()},
            require_https=self.request.is_secure(),
        ):
            return next_url
        return list_url()

    def get_layout(self) -> str:
        layout = self.request.POST.get("layout")
        return layout if layout in LAYOUTS else LAYOUTS[0]

    def render_row(self, pk: int, notice: str) -> TemplateResponse:
        """The row as it is now, plus the nav's pending count (rendered after the write)."""
        alert = get_object_or_404(
            RunLog.objects.visible_to(Scope.for_user(self.request.user)).alerts(), pk=pk
        )
        attach_triage_events([alert])
        context = {
            "alert": alert,
            "notice": notice,
            "next_url": self.get_next_url(),
            "layout": self.get_layout(),
        }
        return TemplateResponse(self.request, ROW_TEMPLATE, context)

    def refusal_fragment(self, refusal: Refused) -> TemplateResponse:
        """For HTMX, the refusal in place of the row (a whole error page would not fit)."""
        reason = refusal.message
        if isinstance(refusal, NotPermitted):
            reason = _("You may not change alerts. Nothing was changed.")
        context = {"pk": self.kwargs["pk"], "reason": reason}
        return TemplateResponse(self.request, REFUSAL_TEMPLATE, context, status=refusal.status)
