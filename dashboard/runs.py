"""Run logs: every model call, filterable, exportable, and one call in full (SPEC.md §4)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models import Q
from django.db.models.functions import Length
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.generic import DetailView

from aimonitor.figures.calls import app_health
from aimonitor.listing import (
    MAX_ID,
    AppTypeField,
    BigIntegerField,
    CodeField,
    FilteredListView,
    FilterForm,
    SuggestionsInput,
)
from aimonitor.models import AuditEvent, RunLog
from aimonitor.operations import RUN_LOGS_TABLE
from aimonitor.permissions import VIEW_PROMPT, allowed
from aimonitor.scope import Scope
from aimonitor.timerange import TimeRange, TimeRangeForm
from aimonitor.timestamps import is_moment

SENSITIVE_FIELDS = ("request_prompt", "response_text")
TRIGGER_TYPES = ("event", "schedule", "manual", "chat", "batch")


class RunFilterForm(TimeRangeForm, FilterForm):
    q = forms.CharField(
        label=_("Search"),
        required=False,
        max_length=200,
        help_text=_("A run id or member id, or text of the error (in the chosen range, else 24h)."),
    )
    app_type = AppTypeField(label=_("App type"), max_length=64)
    status = CodeField(label=_("Status"), suggestions=RunLog.Status.values)
    trigger_type = CodeField(label=_("Trigger"), suggestions=TRIGGER_TYPES)
    member_id = BigIntegerField(label=_("Member id"))

    field_order = ["q", "app_type", "status", "trigger_type", "member_id", "site"]
    exact_filters = {
        "app_type": "app_type",
        "status": "status",
        "trigger_type": "trigger_type",
        "member_id": "member_id",
    }
    # Text search without a chosen window reads this much: never the whole table.
    TEXT_SEARCH_DEFAULT = "24h"

    def __init__(self, *args, app_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["app_type"].widget = SuggestionsInput(app_types)

    def filter(self, queryset):
        """The common filters and the range; then ``q``: an id, or error text."""
        queryset = super().filter(queryset)
        text = (self.cleaned_data.get("q") or "").strip()
        if not text:
            return queryset
        if text.isascii() and text.isdigit() and int(text) <= MAX_ID:
            return queryset.filter(Q(pk=int(text)) | Q(member_id=int(text)))
        data = self.cleaned_data
        if not (data.get("time_range") or data.get("date_from") or data.get("date_to")):
            queryset = TimeRange.last(self.TEXT_SEARCH_DEFAULT).narrow(queryset)
        # Only calls with an error text can match: the partial index of those serves it.
        return queryset.filter(error_message__isnull=False, error_message__icontains=text)


class RunListView(FilteredListView):
    model = RunLog
    filter_form_class = RunFilterForm
    template_name = "dashboard/runs.html"
    csv_filename = "runs.csv"
    csv_fields = [
        "id",
        "created_at",
        "finished_at",
        "site_id",
        "app_type",
        "trigger_type",
        "member_id",
        "session_id",
        "status",
        "alert_status",
        "tokens_used",
        "latency_ms",
        "error_message",
    ]

    def get_base_queryset(self):
        """The user's calls, newest first, without the (large, sensitive) texts."""
        return super().get_base_queryset().defer(*SENSITIVE_FIELDS)

    def get_form(self) -> RunFilterForm:
        """The filter form, suggesting the app types of the user's sites."""
        apps = [app["app_type"] for app in app_health(Scope.for_user(self.request.user))]
        return self.filter_form_class(self.request.GET, user=self.request.user, app_types=apps)


def milliseconds(start, end) -> int | None:
    """``end - start`` in whole milliseconds, or None when either is unknown (or infinite)."""
    if not (is_moment(start) and is_moment(end)):
        return None
    return round((end - start).total_seconds() * 1000)


class RunDetailView(LoginRequiredMixin, DetailView):
    template_name = "dashboard/run_detail.html"
    context_object_name = "run"

    def can_view_prompt(self) -> bool:
        return allowed(self.request.user, VIEW_PROMPT)

    def get_queryset(self):
        """The user's calls; the texts' lengths always, the texts only with view_prompt."""
        queryset = RunLog.objects.visible_to(Scope.for_user(self.request.user)).annotate(
            prompt_length=Length("request_prompt"), response_length=Length("response_text")
        )
        return queryset if self.can_view_prompt() else queryset.defer(*SENSITIVE_FIELDS)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        run = self.object
        context.update(
            can_view_prompt=self.can_view_prompt(),
            duration_ms=milliseconds(run.created_at, run.finished_at),
            member_runs_url=self.member_runs_url(run),
            alert_url=self.alert_url(run) if run.is_alert else None,
            history=AuditEvent.objects.about(RUN_LOGS_TABLE, run.pk)[:50],
        )
        return context

    def member_runs_url(self, run: RunLog) -> str | None:
        """The member's other calls at the same site."""
        if run.member_id is None:
            return None
        query = urlencode({"member_id": run.member_id, "site": run.site_id})
        return f"{reverse('dashboard:runs')}?{query}"

    def alert_url(self, run: RunLog) -> str:
        """The alerts list narrowed to this call's app, site and local day."""
        params = {"alert_status": "all", "app_type": run.app_type, "site": run.site_id}
        if is_moment(run.created_at):
            day = timezone.localdate(run.created_at).isoformat()
            params.update(date_from=day, date_to=day)
        return f"{reverse('alerts:list')}?{urlencode(params)}"
