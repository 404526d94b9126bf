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
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View

from aimonitor.figures.calls import app_health
from aimonitor.listing import MAX_ID, FilteredListView, capped_count
from aimonitor.models import AuditEvent, RunLog
from aimonitor.operations.alerts import (
    BULK_LIMIT,
    RUN_LOGS_TABLE,
    TARGET_STATUS,
    TooManyAlerts,
    TriageResult,
    require_triage,
    set_alert_status,
)
from aimonitor.scope import Scope
from aimonitor.sites import site_choices
from alerts.describe import describe_filter
from alerts.forms import AlertFilterForm, BulkActionForm

ROW_TEMPLATE = "alerts/alerts.html#alert_row_swap"
REFUSAL_TEMPLATE = "alerts/alerts.html#alert_row_refused"
LAYOUTS = ("list", "compact")  # compact: no bulk checkbox (the dashboard's panel)
PREVIEW_ROWS = 10  # the bulk confirmation shows the first rows it will change


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


class AlertListView(FilteredListView):
    """Failed, timed-out and circuit-open calls; pending ones unless the filter says otherwise.

    POST is the bulk action, in two steps like the admin's delete_selected: the first
    answers with a confirmation page showing the count, the second (``confirm=yes``)
    re-checks permission and scope, acts, and redirects back to the filtered list.
    """

    model = RunLog
    filter_form_class = AlertFilterForm
    template_name = "alerts/alerts.html"
    csv_filename = "alerts.csv"
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
        context["bulk_limit"] = BULK_LIMIT
        return context

    def post(self, request, *args, **kwargs):
        """Bulk acknowledge / ignore: the confirmation page, or (confirm=yes) the action."""
        require_triage(request.user)
        bulk = BulkActionForm(request.POST)
        form = self.get_bulk_filter_form()
        if not (bulk.is_valid() and form.is_valid()):
            return self.render_bulk(bulk, form, status=400)
        form.scope()  # a site outside the user's sites: 403
        back = list_url(form.active_params())
        try:
            ids = self.get_bulk_ids(bulk, form)
        except TooManyAlerts:
            messages.error(
                request,
                _(
                    "More than %(limit)s alerts were chosen; a bulk action handles at most "
                    "%(limit)s. Narrow the filter and try again. Nothing was changed."
                )
                % {"limit": intcomma(BULK_LIMIT)},
            )
            return redirect(back)
        if not ids:
            messages.warning(request, _("No alerts were chosen. Nothing was changed."))
            return redirect(back)
        if not bulk.confirmed:
            return self.render_bulk(bulk, form, ids=ids)
        result = set_alert_status(request.user, ids, bulk.cleaned_data["action"])
        for line in result.summary():
            messages.success(request, line)
        return redirect(back)

    def get_bulk_filter_form(self) -> AlertFilterForm:
        """The list filters, carried in the bulk form's hidden inputs."""
        return self.filter_form_class(self.request.POST, user=self.request.user)

    def get_bulk_ids(self, bulk: BulkActionForm, form: AlertFilterForm) -> list[int]:
        """The alert ids a bulk action covers (at most BULK_LIMIT, else TooManyAlerts)."""
        if bulk.whole_filter and not bulk.confirmed:
            candidates = self.get_queryset(form)
        else:
            # The ticked rows, or on confirmation exactly the rows that were confirmed;
            # either way only alerts this user may see.
            posted = bulk.cleaned_data["ids"]
            if len(posted) > BULK_LIMIT:
                raise TooManyAlerts
            candidates = self.get_base_queryset().alerts().filter(pk__in=posted)
        ids = list(candidates.values_list("pk", flat=True)[: BULK_LIMIT + 1])
        if len(ids) > BULK_LIMIT:
            raise TooManyAlerts
        return ids

    def render_bulk(self, bulk, form, ids=(), status=200) -> TemplateResponse:
        """The confirmation page (or the errors that stop it)."""
        context = {"bulk": bulk, "form": form, "invalid": status != 200}
        if ids:
            action = bulk.cleaned_data["action"]
            to_status = TARGET_STATUS[action]
            already = (
                RunLog.objects.visible_to(Scope.for_user(self.request.user))
                .filter(pk__in=ids)
                .aggregate(n=Count("pk", filter=Q(alert_status=to_status)))["n"]
            )
            context.update(
                action=action,
                ids=",".join(map(str, ids)),
                count=len(ids),
                already=already,
                to_label=RunLog.AlertStatus(to_status).label,
                filter_params=form.active_params(),
                back_url=list_url(form.active_params()),
                description=describe_filter(form, dict(site_choices(self.request.user))),
                preview=RunLog.objects.visible_to(Scope.for_user(self.request.user))
                .filter(pk__in=ids)
                .defer("request_prompt", "response_text")
                .newest_first()[:PREVIEW_ROWS],
            )
        else:
            context["back_url"] = list_url(form.active_params() if form.is_valid() else {})
        return TemplateResponse(self.request, "alerts/bulk_confirm.html", context, status=status)


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


class AlertActionView(LoginRequiredMixin, View):
    """POST /alerts/<id>/ack|ignore|reopen/: one alert changes state.

    HTMX gets the row back (and the nav count out of band); a plain form post is
    redirected to ``next``, the filtered page it came from.
    """

    http_method_names = ["post"]
    action = ""

    def post(self, request, pk: int):
        try:
            result = set_alert_status(request.user, [pk], self.action)
            if result.missing:
                raise Http404("No such alert.")
        except (Http404, PermissionDenied) as refusal:
            if request.htmx:
                return self.render_refusal(pk, refusal)
            raise
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

    def render_refusal(self, pk: int, refusal: Exception) -> TemplateResponse:
        """For HTMX, the refusal in place of the row (a whole error page would not fit)."""
        if isinstance(refusal, PermissionDenied):
            reason, status = _("You may not change alerts. Nothing was changed."), 403
        else:
            reason = _("#%(id)s is not an alert among your sites. Nothing was changed.") % {
                "id": pk
            }
            status = 404
        context = {"pk": pk, "reason": reason}
        return TemplateResponse(self.request, REFUSAL_TEMPLATE, context, status=status)
