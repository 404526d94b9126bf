"""Trigger jobs: the list (with the queue's health and bulk retry), one job in full, and
its retry (SPEC.md §4, §9).

Every action returns to the list with the filters it had: the bulk retry's forms
carry them as hidden inputs, and a job opened from the list carries them in its URL
(``back=list`` plus the filters) into its retry form. A bulk confirmation carries
the ids it showed (``RowIdsField``, as on the alerts page) and the retry acts on
exactly those: rows that began to match in between are not retried.
"""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models.fields.json import KT
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.generic import DetailView

from aimonitor.bulk import BulkActionMixin, BulkSelectionForm
from aimonitor.deepjson import MAX_DEPTH, pretty
from aimonitor.figures.queue import stuck_before
from aimonitor.listing import (
    BigIntegerField,
    CodeField,
    FilteredListView,
    FilterForm,
    ScopeSuggestionsInput,
)
from aimonitor.localtime import local_today
from aimonitor.models import TriggerJob
from aimonitor.operations.jobs import (
    UNFINISHED,
    classify,
    latest_retries,
    retried_filter,
    retry_history,
    retry_job,
    retry_jobs,
)
from aimonitor.operations.refusals import Conflict, Invalid, Refused
from aimonitor.permissions import RETRY_JOB, allowed, require
from aimonitor.responses import RefusalMixin
from aimonitor.scope import Scope
from dashboard.queue import health_context
from dashboard.runs import milliseconds


class JobFilterForm(FilterForm):
    event_type = CodeField(
        label=gettext_lazy("Event type"),
        max_length=64,
        suggestions=("consumption", "recharge", "admin_batch"),
    )
    status = CodeField(label=gettext_lazy("Status"), suggestions=TriggerJob.Status.values)
    member_id = BigIntegerField(label=gettext_lazy("Member id"))
    is_forced = forms.TypedChoiceField(
        label=gettext_lazy("Forced"),
        required=False,
        choices=[
            ("", gettext_lazy("Any")),
            ("true", gettext_lazy("Yes")),
            ("false", gettext_lazy("No")),
        ],
        coerce=lambda value: value == "true",
        empty_value=None,
    )
    batch = CodeField(label=gettext_lazy("Batch"), max_length=64)
    retried = forms.TypedChoiceField(
        label=gettext_lazy("Retried"),
        required=False,
        choices=[
            ("", gettext_lazy("Any")),
            ("yes", gettext_lazy("Yes")),
            ("no", gettext_lazy("No")),
        ],
        coerce=lambda value: value == "yes",
        empty_value=None,
    )
    stuck = forms.TypedChoiceField(
        label=gettext_lazy("Stuck"),
        required=False,
        choices=[("", gettext_lazy("Any")), ("yes", gettext_lazy("Yes"))],
        coerce=lambda value: value == "yes",
        empty_value=None,
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.user is not None:
            widget = ScopeSuggestionsInput(TriggerJob, "event_type", self.user)
            self.fields["event_type"].widget = widget

    field_order = [
        "event_type",
        "status",
        "member_id",
        "is_forced",
        "retried",
        "stuck",
        "batch",
        "site",
    ]
    exact_filters = {"event_type": "event_type", "status": "status", "member_id": "member_id"}

    def filter(self, queryset):
        """The exact filters, plus ``is_forced``, ``retried``, ``stuck`` and ``batch``."""
        queryset = super().filter(queryset)
        data = self.cleaned_data
        if data.get("is_forced") is not None:
            queryset = queryset.filter(is_forced=data["is_forced"])
        if data.get("retried") is not None:
            queryset = queryset.filter(retried_filter(data["retried"]))
        if data.get("stuck"):
            queryset = queryset.filter(
                status=TriggerJob.Status.PENDING, created_at__lt=stuck_before(timezone.now())
            )
        if data.get("batch"):
            # payload ? 'batch_id' AND payload ->> 'batch_id' = ...: the partial
            # expression index ai_trigger_jobs_batch_idx serves exactly this.
            queryset = (
                queryset.filter(payload__has_key="batch_id")
                .alias(batch_id=KT("payload__batch_id"))
                .filter(batch_id=data["batch"])
            )
        return queryset


class BulkRetryForm(BulkSelectionForm):
    """The bulk retry: the one selection form, with the tick for jobs already retried."""

    again_ok = forms.BooleanField(required=False)


class JobListView(BulkActionMixin, FilteredListView):
    """The jobs, with the queue's health; POST is the bulk retry (``aimonitor.bulk``)."""

    model = TriggerJob
    filter_form_class = JobFilterForm
    template_name = "dashboard/jobs.html"
    csv_filename = "jobs.csv"
    bulk_permission = RETRY_JOB
    bulk_actions = [("retry", "retry")]
    bulk_form_class = BulkRetryForm
    confirm_template = "dashboard/jobs_retry_confirm.html"
    too_many_message = gettext_lazy(
        "More than %(limit)s jobs match; at most %(limit)s can be retried at once. "
        "Narrow the filters or select fewer jobs."
    )
    nothing_chosen_message = gettext_lazy("No jobs were selected, so nothing was retried.")
    back_label = gettext_lazy("Back to the jobs")
    csv_fields = [
        "id",
        "created_at",
        "started_at",
        "finished_at",
        "site_id",
        "event_type",
        "member_id",
        "connector_type",
        "app_chain",
        "is_forced",
        "status",
        "error_message",
    ]

    def get_base_queryset(self):
        """The user's jobs, newest first, without payloads (the detail page shows them)."""
        return super().get_base_queryset().defer("payload")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = kwargs["form"]
        context["can_retry"] = allowed(self.request.user, RETRY_JOB)
        context["bulk_limit"] = self.get_bulk_limit()
        if not kwargs.get("invalid"):
            site = form.cleaned_data.get("site")
            context["batch"] = form.cleaned_data.get("batch")
            context["skipped_today"] = self.skipped_today(site)
            page = kwargs.get("page")
            if page is not None:
                history = retry_history(job.pk for job in page.object_list)
                for job in page.object_list:
                    job.history = history[job.pk]
            # The queue's health in the chosen site (a filter swap sends it out of band).
            context.update(health_context(self.request.user, site))
        return context

    def skipped_today(self, site: int | None) -> int:
        """Today's de-duplicated triggers in the user's scope and the chosen site."""
        return (
            TriggerJob.objects.visible_to(Scope.for_user(self.request.user).narrow(site))
            .on_local_day(local_today())
            .filter(status=TriggerJob.Status.SKIPPED_DUPLICATE)
            .count()
        )

    def check_selection(self, ids: list[int]) -> None:
        """Chosen jobs that are all pending or running: nothing to retry (409)."""
        self.counts = classify(self.request.user, ids)
        if not (self.counts["retry"] or self.counts["already_retried"]):
            raise Conflict(
                ngettext(
                    "The %(count)s job chosen is pending or running: it has not finished, so "
                    "a retry would run it twice. Nothing was retried.",
                    "The %(count)s jobs chosen are pending or running: they have not finished, "
                    "so a retry would run them twice. Nothing was retried.",
                    self.counts["unfinished"],
                )
                % {"count": self.counts["unfinished"]}
            )

    def confirm_context(self, ids: list[int]) -> dict:
        return {
            "count": self.counts["retry"],
            "already_retried": self.counts["already_retried"],
            "unfinished": self.counts["unfinished"],
            "key": uuid.uuid4().hex,
        }

    def perform_bulk(self, ids: list[int]) -> list[tuple[int, str]]:
        """Retry the confirmed jobs; what it did, and what it left out and why."""
        key = self.bulk.cleaned_data["key"]
        retried = retry_jobs(
            self.request.user,
            ids,
            key=f"retry-bulk:{key}" if key else None,
            again_ok=self.bulk.cleaned_data["again_ok"],
        )
        if retried.repeated:
            return [
                (messages.INFO, _("These jobs were already retried; nothing more was created."))
            ]
        count = len(retried.new_ids)
        lines = [
            (
                messages.SUCCESS,
                ngettext(
                    "Retried %(count)s job as a new forced job.",
                    "Retried %(count)s jobs as new forced jobs.",
                    count,
                )
                % {"count": count},
            )
        ]
        if retried.already_retried:
            left = len(retried.already_retried)
            lines.append(
                (
                    messages.WARNING,
                    ngettext(
                        "Left out %(count)s job that was already retried; tick “Retry again” "
                        "to retry it anyway.",
                        "Left out %(count)s jobs that were already retried; tick “Retry again” "
                        "to retry them anyway.",
                        left,
                    )
                    % {"count": left},
                )
            )
        if retried.unfinished:
            left = len(retried.unfinished)
            lines.append(
                (
                    messages.WARNING,
                    ngettext(
                        "Left out %(count)s job that is pending or running: it has not finished.",
                        "Left out %(count)s jobs that are pending or running: they have not "
                        "finished.",
                        left,
                    )
                    % {"count": left},
                )
            )
        return lines

    def back_url(self) -> str:
        return list_url(self.back_params())


def list_url(params: dict) -> str:
    """The jobs list with these filters."""
    return reverse("dashboard:jobs") + (f"?{urlencode(params)}" if params else "")


def latest_copy(job_id: int) -> int | None:
    """The newest retry of job ``job_id``, if it was retried."""
    return latest_retries([job_id]).get(job_id, (0, None))[1]


def list_origin(data, user) -> dict | None:
    """The filters of the list a job page was opened from (``back=list``), else None."""
    if data.get("back") != "list":
        return None
    form = JobFilterForm(data, user=user)
    return form.active_params() if form.is_valid() else {}


class JobDetailView(LoginRequiredMixin, DetailView):
    template_name = "dashboard/job_detail.html"
    context_object_name = "job"
    back_data = None  # the retry form's data when a refused retry shows the page again

    def get_queryset(self):
        """The user's jobs."""
        return TriggerJob.objects.visible_to(Scope.for_user(self.request.user))

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.object
        origin = list_origin(self.back_data or self.request.GET, self.request.user)
        payload_json, laid_out = pretty(job.payload) if job.payload is not None else (None, True)
        context.update(
            payload_json=payload_json,
            payload_too_deep=not laid_out,
            max_json_depth=MAX_DEPTH,
            wait_ms=milliseconds(job.created_at, job.started_at),
            run_ms=milliseconds(job.started_at, job.finished_at),
            total_ms=milliseconds(job.created_at, job.finished_at),
            history=retry_history([job.pk])[job.pk],
            can_retry=allowed(self.request.user, RETRY_JOB),
            back_params=origin,
            back_url=list_url(origin if origin is not None else {}),
            retried_as=latest_copy(job.pk),
            unfinished=job.status in UNFINISHED,
            # A fresh one-time key per page view: a second submit of this form is a no-op.
            retry_key=uuid.uuid4().hex,
            retry_error=kwargs.get("retry_error"),
        )
        return context


class JobRetryView(LoginRequiredMixin, RefusalMixin, View):
    """POST /jobs/<id>/retry/: one new forced, pending copy of the job, or 409 saying why.

    Back to the filtered list it came from (``back=list`` and the filters), else to
    the new job. A refusal is the job page again with the reason beside its button.
    """

    http_method_names = ["post"]
    job = None

    def post(self, request, pk):
        require(request.user, RETRY_JOB)
        self.job = get_object_or_404(
            TriggerJob.objects.visible_to(Scope.for_user(request.user)), pk=pk
        )
        key = request.POST.get("key", "").strip()
        if key:
            try:
                key = uuid.UUID(key).hex
            except ValueError:
                raise Invalid(_("The form's one-time key is malformed.")) from None
        again_ok = request.POST.get("again_ok", "") in ("1", "on", "yes", "true")
        retried = retry_job(
            request.user, self.job, key=f"retry:{key}" if key else None, again_ok=again_ok
        )
        new_id = next(iter(retried.new_ids.values()), None)
        if new_id is None:  # cannot happen for a visible job; say so rather than 500
            raise Invalid(_("The job could not be retried."))
        if retried.repeated:
            messages.info(
                request, _("Already retried as #%(id)s; nothing more was created.") % {"id": new_id}
            )
        else:
            messages.success(request, _("Retried as job #%(id)s.") % {"id": new_id})
        origin = list_origin(request.POST, request.user)
        if origin is not None:
            return redirect(list_url(origin))
        return redirect("dashboard:job_detail", pk=new_id)

    def refusal_page(self, refusal: Refused):
        """The job page again with the reason (400 for bad input, 409 for a refused retry)."""
        if self.job is None:
            return None
        view = JobDetailView(request=self.request, kwargs={"pk": self.job.pk}, object=self.job)
        view.back_data = self.request.POST  # the page keeps the list it came from
        return TemplateResponse(
            self.request,
            JobDetailView.template_name,
            view.get_context_data(retry_error=refusal.message),
            status=refusal.status,
        )
