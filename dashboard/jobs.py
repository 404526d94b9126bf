"""Trigger jobs: the list (with bulk retry), one job in full, and its retry (SPEC.md §4)."""

from __future__ import annotations

import uuid
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.db.models.fields.json import KT
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views import View
from django.views.generic import DetailView

from aimonitor.deepjson import MAX_DEPTH, pretty
from aimonitor.listing import MAX_ID, BigIntegerField, CodeField, FilteredListView, FilterForm
from aimonitor.localtime import local_today
from aimonitor.models import TriggerJob
from aimonitor.operations.jobs import (
    BULK_LIMIT,
    TooManyJobs,
    check_can_retry,
    retry_history,
    retry_job,
    retry_jobs,
)
from dashboard.runs import milliseconds

RETRY_PERMISSION = "aimonitor.retry_job"
CONFIRM_SAMPLE_SIZE = 10


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

    field_order = ["event_type", "status", "member_id", "is_forced", "batch", "site"]
    exact_filters = {"event_type": "event_type", "status": "status", "member_id": "member_id"}

    def filter(self, queryset):
        """The exact filters, plus ``is_forced`` and ``batch`` (payload's batch_id)."""
        queryset = super().filter(queryset)
        data = self.cleaned_data
        if data.get("is_forced") is not None:
            queryset = queryset.filter(is_forced=data["is_forced"])
        if data.get("batch"):
            # payload ? 'batch_id' AND payload ->> 'batch_id' = ...: the partial
            # expression index ai_trigger_jobs_batch_idx serves exactly this.
            queryset = (
                queryset.filter(payload__has_key="batch_id")
                .alias(batch_id=KT("payload__batch_id"))
                .filter(batch_id=data["batch"])
            )
        return queryset


class IdListField(forms.Field):
    """Repeated ``ids`` inputs: each a row id that fits bigint."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        ids = []
        for item in value or []:
            item = str(item).strip()
            if not item.isascii() or not item.isdigit() or not 0 < int(item) <= MAX_ID:
                raise forms.ValidationError(_("“%(value)s” is not a job id.") % {"value": item})
            ids.append(int(item))
        return sorted(set(ids))


class BulkRetryForm(forms.Form):
    """The bulk retry POST: chosen ``ids``, or every job the filters match."""

    action = forms.ChoiceField(choices=[("retry", "retry")])
    ids = IdListField(required=False)
    select_across = forms.BooleanField(required=False)
    confirm = forms.ChoiceField(required=False, choices=[("", ""), ("yes", "yes")])
    key = forms.UUIDField(required=False)


class JobListView(FilteredListView):
    model = TriggerJob
    filter_form_class = JobFilterForm
    template_name = "dashboard/jobs.html"
    csv_filename = "jobs.csv"
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
        context["can_retry"] = self.request.user.has_perm(RETRY_PERMISSION)
        if not kwargs.get("invalid"):
            site = form.cleaned_data.get("site")
            context["batch"] = form.cleaned_data.get("batch")
            context["skipped_today"] = self.skipped_today(site)
            page = kwargs.get("page")
            if page is not None:
                history = retry_history(job.pk for job in page.object_list)
                for job in page.object_list:
                    job.history = history[job.pk]
        return context

    def skipped_today(self, site: int | None) -> int:
        """Today's de-duplicated triggers in the user's scope and the chosen site."""
        return (
            TriggerJob.objects.visible_to(self.request.user)
            .for_site(site)
            .on_local_day(local_today())
            .filter(status=TriggerJob.Status.SKIPPED_DUPLICATE)
            .count()
        )

    def post(self, request, *args, **kwargs):
        """Bulk retry: first POST shows the count to confirm, ``confirm=yes`` retries."""
        check_can_retry(request.user)
        form = self.filter_form_class(request.POST, user=request.user)
        if not form.is_valid():
            context = self.get_context_data(form=form, page=None, invalid=True)
            return self.render_to_response(context, status=400)
        form.check_site_access()
        action = BulkRetryForm(request.POST)
        if not action.is_valid():
            errors = [error for field_errors in action.errors.values() for error in field_errors]
            return self.render_confirm(form, action, errors=errors, status=400)
        jobs = self.get_base_queryset()
        if action.cleaned_data["select_across"]:
            jobs = form.filter(jobs)
        else:
            jobs = jobs.filter(pk__in=action.cleaned_data["ids"])
        # Count one past the cap, never the whole table.
        count = jobs.values("pk")[: BULK_LIMIT + 1].count()
        if count == 0:
            messages.warning(request, _("No jobs were selected, so nothing was retried."))
            return redirect(self.list_url(form))
        if count > BULK_LIMIT:
            error = _(
                "More than %(limit)s jobs match; at most %(limit)s can be retried at once. "
                "Narrow the filters or select fewer jobs."
            ) % {"limit": f"{BULK_LIMIT:,}"}
            return self.render_confirm(form, action, errors=[error], status=400)
        if action.cleaned_data["confirm"] != "yes":
            return self.render_confirm(form, action, jobs=jobs, count=count)
        key = action.cleaned_data["key"]
        try:
            retried = retry_jobs(
                request.user,
                jobs.values_list("pk", flat=True),
                key=f"retry-bulk:{key}" if key else None,
            )
        except TooManyJobs as error:  # the filter grew past the cap since the count
            return self.render_confirm(form, action, errors=[str(error)], status=400)
        if retried.repeated:
            messages.info(request, _("These jobs were already retried; nothing more was created."))
        else:
            messages.success(
                request,
                ngettext(
                    "Retried %(count)s job as a new forced job.",
                    "Retried %(count)s jobs as new forced jobs.",
                    len(retried.new_ids),
                )
                % {"count": len(retried.new_ids)},
            )
        return redirect("/jobs/")

    def render_confirm(self, form, action, *, jobs=None, count=0, errors=(), status=200):
        """The confirmation page (or the refusal), carrying the choice in hidden inputs."""
        context = {
            "count": count,
            "sample": list(jobs[:CONFIRM_SAMPLE_SIZE]) if jobs is not None else [],
            "errors": list(errors),
            "ids": action.cleaned_data.get("ids", []) if action.is_valid() else [],
            "select_across": action.is_valid() and action.cleaned_data["select_across"],
            "filter_params": form.active_params(),
            "back_url": self.list_url(form),
            "key": uuid.uuid4().hex,
            "bulk_limit": BULK_LIMIT,
        }
        return TemplateResponse(
            self.request, "dashboard/jobs_retry_confirm.html", context, status=status
        )

    def list_url(self, form) -> str:
        params = form.active_params()
        return "/jobs/" + (f"?{urlencode(params)}" if params else "")


class JobDetailView(LoginRequiredMixin, DetailView):
    template_name = "dashboard/job_detail.html"
    context_object_name = "job"

    def get_queryset(self):
        """The user's jobs."""
        return TriggerJob.objects.visible_to(self.request.user)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        job = self.object
        payload_json, laid_out = pretty(job.payload) if job.payload is not None else (None, True)
        context.update(
            payload_json=payload_json,
            payload_too_deep=not laid_out,
            max_json_depth=MAX_DEPTH,
            wait_ms=milliseconds(job.created_at, job.started_at),
            run_ms=milliseconds(job.started_at, job.finished_at),
            total_ms=milliseconds(job.created_at, job.finished_at),
            history=retry_history([job.pk])[job.pk],
            can_retry=self.request.user.has_perm(RETRY_PERMISSION),
            # A fresh one-time key per page view: a second submit of this form is a no-op.
            retry_key=uuid.uuid4().hex,
            retry_error=kwargs.get("retry_error"),
        )
        return context


class JobRetryView(LoginRequiredMixin, View):
    """POST /jobs/<id>/retry/: one new forced, pending copy of the job."""

    http_method_names = ["post"]

    def post(self, request, pk):
        check_can_retry(request.user)
        job = get_object_or_404(TriggerJob.objects.visible_to(request.user), pk=pk)
        key = request.POST.get("key", "").strip()
        if key:
            try:
                key = uuid.UUID(key).hex
            except ValueError:
                return self.refuse(request, job, _("The form's one-time key is malformed."))
        retried = retry_job(request.user, job, key=f"retry:{key}" if key else None)
        new_id = next(iter(retried.new_ids.values()), None)
        if new_id is None:  # cannot happen for a visible job; say so rather than 500
            return self.refuse(request, job, _("The job could not be retried."))
        if retried.repeated:
            messages.info(
                request, _("Already retried as #%(id)s; nothing more was created.") % {"id": new_id}
            )
        else:
            messages.success(request, _("Retried as job #%(id)s.") % {"id": new_id})
        return redirect("dashboard:job_detail", pk=new_id)

    def refuse(self, request, job, error: str):
        """The job page again with the error, status 400."""
        view = JobDetailView(request=request, kwargs={"pk": job.pk}, object=job)
        return TemplateResponse(
            request,
            JobDetailView.template_name,
            view.get_context_data(retry_error=error),
            status=400,
        )
