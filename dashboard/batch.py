"""The batch run page ``/batch/``: estimate, confirm or cancel, recent batches (SPEC.md §4).

The first step posts the form to ``/batch/`` and is answered with the confirmation
page; its hidden ``batch_id`` is all the confirm needs, the rest waits in the
session (``aimonitor.operations.batch``). Refusals come back as the batch page
with the reason: 400 for an unknown or expired batch, 409 for one already used or
cancelled.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import cached_property, lazy
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.generic import TemplateView

from aimonitor.access import can_see_site
from aimonitor.listing import MAX_ID, BigIntegerField, HtmxTemplateMixin
from aimonitor.models import RunLog
from aimonitor.operations.batch import (
    MAX_MEMBERS,
    PERMISSION,
    BatchRefused,
    cancel_batch,
    confirm_batch,
    estimate_batch,
    pending_batch,
    recent_batches,
)
from aimonitor.sites import site_choices
from aimonitor.skipscan import distinct_values

APP_TYPE_DAYS = 30
MEMBERS_SHOWN = 50
# Bad values named in an error message; the rest are counted.
BAD_VALUES_SHOWN = 20
MEMBER_SEPARATORS = re.compile(r"[\s,]+")
DIGITS = re.compile(r"[0-9]+", re.ASCII)
REFUSAL_STATUS = {
    BatchRefused.UNKNOWN: 400,
    BatchRefused.EXPIRED: 400,
    BatchRefused.OVER_BUDGET: 400,
    BatchRefused.CANCELLED: 409,
    BatchRefused.USED: 409,
}


def offered_app_types(user, days: int = APP_TYPE_DAYS) -> list[str]:
    """The app types called in the user's sites in the last ``days`` days, alphabetical.

    Two queries, neither reading the month's rows: a loose index scan of app types, then one
    UNION of ``LIMIT 1`` probes, one per app type, on the scoped queryset.
    """
    candidates = distinct_values(RunLog, "app_type")
    if not candidates:
        return []
    recent = RunLog.objects.visible_to(user).filter(
        created_at__gte=timezone.now() - dt.timedelta(days=days)
    )
    probes = [
        recent.filter(app_type=app_type).values_list("app_type", flat=True)[:1]
        for app_type in candidates
    ]
    return sorted(set(probes[0].union(*probes[1:], all=True)))


def _named(values: list[str]) -> str:
    shown = ", ".join(values[:BAD_VALUES_SHOWN])
    if len(values) > BAD_VALUES_SHOWN:
        shown += str(_(" and %(count)s more") % {"count": len(values) - BAD_VALUES_SHOWN})
    return shown


class BatchForm(forms.Form):
    """Step 1: the site, the apps to re-run and the members to re-run them for."""

    site = BigIntegerField(label=_("Site"), required=True, widget=forms.Select)
    app_types = forms.MultipleChoiceField(
        label=_("Apps"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one app.")},
    )
    member_ids = forms.CharField(
        label=_("Member ids"),
        # Lazy as a whole: interpolating a lazy string at import fixes it in English.
        help_text=lazy(
            lambda: (
                _("Separated by commas, spaces or new lines; at most %(max)s.")
                % {"max": number_format(MAX_MEMBERS, force_grouping=True)}
            ),
            str,
        )(),
        widget=forms.Textarea(attrs={"rows": 6}),
        # 5,000 ids of 19 digits with separators fit easily; more is a paste gone wrong.
        max_length=200_000,
        error_messages={"required": _("Enter at least one member id.")},
    )

    def __init__(self, *args, user, app_types: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        self.offered_app_types = app_types
        self.duplicates = 0
        self.fields["site"].widget.choices = [("", "—")] + site_choices(user)
        self.fields["app_types"].choices = [(app_type, app_type) for app_type in app_types]

    def clean_app_types(self) -> list[str]:
        """The chosen apps in the order offered (the order of the job's app chain)."""
        chosen = set(self.cleaned_data["app_types"])
        return [app_type for app_type in self.offered_app_types if app_type in chosen]

    def clean_member_ids(self) -> list[int]:
        """Positive bigint ids, duplicates dropped (and counted); every bad value named."""
        tokens = [t for t in MEMBER_SEPARATORS.split(self.cleaned_data["member_ids"]) if t]
        not_positive = [t for t in tokens if not DIGITS.fullmatch(t) or int(t) == 0]
        too_large = [t for t in tokens if DIGITS.fullmatch(t) and int(t) > MAX_ID]
        errors = []
        if not_positive:
            errors.append(_("Not positive integers: %(values)s") % {"values": _named(not_positive)})
        if too_large:
            errors.append(
                _("Too large for a member id: %(values)s") % {"values": _named(too_large)}
            )
        if errors:
            raise forms.ValidationError(errors)
        member_ids = list(dict.fromkeys(int(t) for t in tokens))
        self.duplicates = len(tokens) - len(member_ids)
        if not member_ids:
            raise forms.ValidationError(_("Enter at least one member id."))
        if len(member_ids) > MAX_MEMBERS:
            raise forms.ValidationError(
                _("At most %(max)s members per batch; you gave %(count)s.")
                % {
                    "max": number_format(MAX_MEMBERS, force_grouping=True),
                    "count": number_format(len(member_ids), force_grouping=True),
                }
            )
        return member_ids

    def check_site_access(self) -> None:
        """A ``site`` outside the user's sites is a 403, not a form error."""
        site = self.cleaned_data.get("site")
        if site is not None and not can_see_site(self.user, site):
            raise PermissionDenied(_("You do not have access to site %(site)s.") % {"site": site})


class ConfirmForm(forms.Form):
    """Step 2: the batch to confirm (or cancel), and the tick for going over budget."""

    batch_id = forms.CharField(max_length=64, required=False)
    over_budget_ok = forms.BooleanField(required=False)


class BatchView(LoginRequiredMixin, HtmxTemplateMixin, TemplateView):
    """``/batch/``: the form (admins), and the recent batches of the user's sites (everyone)."""

    template_name = "dashboard/batch.html"
    confirm_template_name = "dashboard/batch_confirm.html"
    htmx_partial = "recent"
    http_method_names = ["get", "post", "head", "options"]

    @cached_property
    def can_launch(self) -> bool:
        return self.request.user.has_perm(PERMISSION)

    def check_permission(self) -> None:
        """Only users with ``run_batch`` may estimate, confirm or cancel."""
        if not self.can_launch:
            raise PermissionDenied(_("You may not launch batch runs."))

    def get_form(self, data=None) -> BatchForm:
        """The step-1 form, offering the app types seen recently in the user's sites."""
        user = self.request.user
        # The site chosen in the top bar's picker is the default.
        initial = {"site": self.request.GET.get("site")}
        return BatchForm(data, user=user, app_types=offered_app_types(user), initial=initial)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_launch"] = self.can_launch
        context["app_type_days"] = APP_TYPE_DAYS
        context["recent_batches"] = recent_batches(self.request.user)
        if self.can_launch and "form" not in context and not self.is_fragment():
            context["form"] = self.get_form()
        return context

    def render_confirmation(self, estimate, refusal: str | None = None, status: int = 200):
        """The confirmation page of a pending batch."""
        context = {
            "view": self,
            "estimate": estimate,
            "members_shown": estimate.member_ids[:MEMBERS_SHOWN],
            "members_more": max(estimate.member_count - MEMBERS_SHOWN, 0),
            "duplicates_note": ngettext(
                "%(count)s duplicate dropped", "%(count)s duplicates dropped", estimate.duplicates
            )
            % {"count": number_format(estimate.duplicates, force_grouping=True)},
            "refusal": refusal,
        }
        return self.response_class(
            request=self.request,
            template=[self.confirm_template_name],
            context=context,
            using=self.template_engine,
            status=status,
        )

    def render_refusal(self, refusal: BatchRefused):
        """The batch page with the reason nothing was created."""
        context = self.get_context_data(refusal=refusal.message)
        return self.render_to_response(context, status=REFUSAL_STATUS[refusal.reason])

    def post(self, request, *args, **kwargs):
        """Step 1: validate the form, keep the estimate in the session, show it."""
        self.check_permission()
        form = self.get_form(request.POST)
        valid = form.is_valid()
        form.check_site_access()
        if not valid:
            return self.render_to_response(self.get_context_data(form=form), status=400)
        data = form.cleaned_data
        estimate = estimate_batch(
            request.user,
            request.session,
            site_id=data["site"],
            app_types=data["app_types"],
            member_ids=data["member_ids"],
            duplicates=form.duplicates,
        )
        return self.render_confirmation(estimate)


class ConfirmBatchView(BatchView):
    """``POST /batch/confirm/``: create the batch's jobs once, then show them."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.check_permission()
        form = ConfirmForm(request.POST)
        form.is_valid()
        batch_id = form.cleaned_data.get("batch_id", "")
        try:
            confirmed = confirm_batch(
                request.user,
                request.session,
                batch_id,
                over_budget_ok=form.cleaned_data.get("over_budget_ok", False),
            )
        except BatchRefused as refusal:
            if refusal.reason == BatchRefused.OVER_BUDGET:
                return self.render_over_budget(batch_id, refusal)
            return self.render_refusal(refusal)
        count = len(confirmed.job_ids)
        messages.success(
            request,
            ngettext(
                "Batch confirmed: %(count)s job created.",
                "Batch confirmed: %(count)s jobs created.",
                count,
            )
            % {"count": number_format(count, force_grouping=True)},
        )
        query = urlencode({"batch": confirmed.batch_id})
        return HttpResponseRedirect(f"{reverse('dashboard:jobs')}?{query}")

    def render_over_budget(self, batch_id: str, refusal: BatchRefused):
        """The confirmation page again, asking for the tick."""
        try:
            estimate = pending_batch(self.request.session, batch_id)
        except BatchRefused as gone:  # expired or used in the meantime
            return self.render_refusal(gone)
        return self.render_confirmation(estimate, refusal=refusal.message, status=400)


class CancelBatchView(BatchView):
    """``POST /batch/cancel/``: drop a pending batch; it can no longer be confirmed."""

    http_method_names = ["post"]

    def post(self, request, *args, **kwargs):
        self.check_permission()
        form = ConfirmForm(request.POST)
        form.is_valid()
        try:
            cancel_batch(request.user, request.session, form.cleaned_data.get("batch_id", ""))
        except BatchRefused as refusal:
            return self.render_refusal(refusal)
        messages.info(request, _("Batch cancelled"))
        return HttpResponseRedirect(reverse("dashboard:batch"))
