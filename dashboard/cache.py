"""Cached AI results: the list, and invalidation in two steps (SPEC.md §4, §7)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.validators import RegexValidator
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from aimonitor.access import require_site
from aimonitor.listing import (
    BigIntegerField,
    CodeField,
    FilteredListView,
    FilterForm,
    RowIdsField,
    ScopeSuggestionsInput,
)
from aimonitor.models import CacheEntry
from aimonitor.operations.cache import (
    CONFIRM_LIMIT,
    INVALIDATE_PERMISSION,
    check_can_invalidate,
    invalidate_cache,
    preview_invalidation,
)
from aimonitor.sites import site_choices


class CacheFilterForm(FilterForm):
    cache_type = CodeField(label=gettext_lazy("Cache type"), max_length=64)
    target_id = forms.CharField(
        label=gettext_lazy("Target id"),
        required=False,
        max_length=64,
        validators=[RegexValidator(r"^\S+\Z", gettext_lazy("A target id has no spaces."))],
    )
    status = CodeField(label=gettext_lazy("Status"), suggestions=CacheEntry.Status.values)

    field_order = ["cache_type", "target_id", "status", "site"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.user is not None:
            widget = ScopeSuggestionsInput(CacheEntry, "cache_type", self.user)
            self.fields["cache_type"].widget = widget

    exact_filters = {"cache_type": "cache_type", "target_id": "target_id", "status": "status"}


class InvalidateForm(forms.Form):
    """Which cached results to invalidate: a site, optionally one type and one member."""

    site = BigIntegerField(label=gettext_lazy("Site"), required=True, widget=forms.Select)
    cache_type = CodeField(label=gettext_lazy("Cache type"), max_length=64)
    member_id = BigIntegerField(label=gettext_lazy("Member id"))
    confirm = forms.ChoiceField(required=False, choices=[("", ""), ("yes", "yes")])
    # The entries the preview counted: the confirmation invalidates those only.
    ids = RowIdsField(required=False)

    def __init__(self, *args, user=None, **kwargs):
        # Its own element ids: the filter form on the same page has fields of the same names.
        kwargs.setdefault("auto_id", "invalidate_%s")
        super().__init__(*args, **kwargs)
        choices = [("", _("Choose a site"))] + site_choices(user)
        self.fields["site"].widget.choices = choices


class CacheListView(FilteredListView):
    model = CacheEntry
    filter_form_class = CacheFilterForm
    template_name = "dashboard/cache.html"
    csv_filename = "cache.csv"
    csv_fields = ["id", "created_at", "expires_at", "site_id", "cache_type", "target_id", "status"]
    invalidate_form = None  # set by post() when the invalidation form is invalid

    def get_base_queryset(self):
        """The user's cache entries, newest first, without the cached results."""
        return super().get_base_queryset().defer("result_json")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        can_invalidate = self.request.user.has_perm(INVALIDATE_PERMISSION)
        context["can_invalidate"] = can_invalidate
        if can_invalidate:
            form = kwargs["form"]
            site = form.cleaned_data.get("site") if form.is_valid() else None
            context["invalidate_form"] = self.invalidate_form or InvalidateForm(
                initial={"site": site}, user=self.request.user
            )
        return context

    def post(self, request, *args, **kwargs):
        """Invalidate: first POST previews the count, ``confirm=yes`` invalidates."""
        check_can_invalidate(request.user)
        form = InvalidateForm(request.POST, user=request.user)
        if not form.is_valid():
            # The list page again, with the invalidation form's errors.
            self.invalidate_form = form
            response = self.get(request, *args, **kwargs)
            response.status_code = 400
            return response
        site = form.cleaned_data["site"]
        cache_type = form.cleaned_data["cache_type"] or None
        member_id = form.cleaned_data["member_id"]
        if form.cleaned_data["confirm"] != "yes":
            ids, sample = preview_invalidation(request.user, site, cache_type, member_id)
            context = {"form": form, "count": len(ids), "sample": sample, "ids": ids}
            if len(ids) > CONFIRM_LIMIT:
                context["too_many"] = CONFIRM_LIMIT
                return TemplateResponse(
                    request, "dashboard/cache_confirm.html", context, status=400
                )
            context["ids"] = ",".join(map(str, ids))
            return TemplateResponse(request, "dashboard/cache_confirm.html", context)
        require_site(request.user, site)
        if not form.cleaned_data["ids"]:
            # A confirmation names what it confirmed; without that, nothing is changed.
            self.invalidate_form = form
            form.add_error(
                None,
                _(
                    "This confirmation does not list its entries. Nothing was invalidated; preview again."
                ),
            )
            response = self.get(request, *args, **kwargs)
            response.status_code = 400
            return response
        done = invalidate_cache(
            request.user, site, cache_type, member_id, ids=form.cleaned_data["ids"]
        )
        messages.success(
            request,
            ngettext(
                "Invalidated %(count)s cache entry.",
                "Invalidated %(count)s cache entries.",
                done.count,
            )
            % {"count": done.count},
        )
        params = {"site": site, "cache_type": cache_type, "target_id": member_id}
        query = urlencode({name: value for name, value in params.items() if value is not None})
        return redirect(f"{reverse('dashboard:cache')}?{query}")
