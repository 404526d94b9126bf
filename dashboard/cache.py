"""Cached AI results: the list, and invalidation in two steps (SPEC.md §4, §7)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.validators import RegexValidator
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from aimonitor.bulk import BulkActionMixin, BulkSelectionForm
from aimonitor.listing import (
    BigIntegerField,
    CodeField,
    FilteredListView,
    FilterForm,
    ScopeSuggestionsInput,
)
from aimonitor.models import CacheEntry
from aimonitor.operations.cache import CONFIRM_LIMIT, invalidate_cache, preview_invalidation
from aimonitor.operations.refusals import Invalid
from aimonitor.permissions import INVALIDATE_CACHE, allowed
from aimonitor.scope import Scope
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


class InvalidateForm(BulkSelectionForm):
    """Which cached results to invalidate: a site, optionally one type and one member.

    The one bulk-selection form, selecting by these criteria instead of ticked rows:
    the preview counts what they match, the confirmation invalidates exactly its
    ``ids``. It is the action's filters too (``active_params``).
    """

    # One action, chosen by the page; rows are never ticked one by one.
    action = select_across = scope = key = None
    site = BigIntegerField(label=gettext_lazy("Site"), required=True, widget=forms.Select)
    cache_type = CodeField(label=gettext_lazy("Cache type"), max_length=64)
    member_id = BigIntegerField(label=gettext_lazy("Member id"))

    def __init__(self, *args, user=None, **kwargs):
        # Its own element ids: the filter form on the same page has fields of the same names.
        kwargs.setdefault("auto_id", "invalidate_%s")
        super().__init__(*args, **kwargs)
        choices = [("", _("Choose a site"))] + site_choices(user)
        self.fields["site"].widget.choices = choices

    def active_params(self) -> dict:
        """The criteria, as the confirmation's hidden inputs post them back."""
        data = self.cleaned_data
        return {
            "site": data.get("site"),
            "cache_type": data.get("cache_type") or "",
            "member_id": "" if data.get("member_id") is None else data["member_id"],
        }


class CacheListView(BulkActionMixin, FilteredListView):
    """The cache entries; POST is the invalidation (``aimonitor.bulk``): preview, confirm."""

    model = CacheEntry
    filter_form_class = CacheFilterForm
    template_name = "dashboard/cache.html"
    csv_filename = "cache.csv"
    csv_fields = ["id", "created_at", "expires_at", "site_id", "cache_type", "target_id", "status"]
    bulk_permission = INVALIDATE_CACHE
    bulk_form_class = InvalidateForm
    confirm_template = "dashboard/cache_confirm.html"
    too_many_message = gettext_lazy(
        "More than %(limit)s valid entries match; at most %(limit)s can be invalidated at "
        "once. Choose a cache type or a member id."
    )
    back_label = gettext_lazy("Back to the cache")
    submit_class = "danger"
    sample: list = []

    def get_base_queryset(self):
        """The user's cache entries, newest first, without the cached results."""
        return super().get_base_queryset().defer("result_json")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        can_invalidate = allowed(self.request.user, INVALIDATE_CACHE)
        context["can_invalidate"] = can_invalidate
        if can_invalidate:
            form = kwargs["form"]
            site = form.cleaned_data.get("site") if form.is_valid() else None
            # After bad criteria, the bound form with its errors.
            context["invalidate_form"] = (
                self.bulk
                if self.bulk is not None
                else InvalidateForm(initial={"site": site}, user=self.request.user)
            )
        return context

    def get_bulk_form(self) -> InvalidateForm:
        """The invalidation's criteria are its selection and its filters at once."""
        return self.bulk_form_class(self.request.POST, user=self.request.user)

    def get_bulk_filter_form(self) -> InvalidateForm:
        return self.bulk

    def bulk_invalid(self):
        """Bad criteria: the list page again, the errors beside the invalidation's fields."""
        response = self.get(self.request)
        response.status_code = 400
        return response

    def check_bulk_scope(self) -> None:
        Scope.for_user(self.request.user).require(self.bulk.cleaned_data["site"])

    def get_bulk_limit(self) -> int:
        return CONFIRM_LIMIT

    def get_bulk_ids(self) -> list[int]:
        """The preview's matching entries; on the confirmation, exactly those it counted."""
        data = self.bulk.cleaned_data
        if self.bulk.confirmed:
            if not data["ids"]:
                # A confirmation names what it confirmed; without that, nothing is changed.
                raise Invalid(
                    _(
                        "This confirmation does not list its entries. Nothing was "
                        "invalidated; preview again."
                    )
                )
            return data["ids"]
        ids, self.sample = preview_invalidation(
            self.request.user, data["site"], data["cache_type"] or None, data["member_id"]
        )
        return ids

    def bulk_sample(self, ids: list[int]) -> list:
        return self.sample

    def nothing_chosen(self):
        """Nothing matches: the confirmation says so (there is nothing to confirm)."""
        return self.render_confirm()

    def perform_bulk(self, ids: list[int]) -> list[tuple[int, str]]:
        data = self.bulk.cleaned_data
        done = invalidate_cache(
            self.request.user, data["site"], data["cache_type"] or None, data["member_id"], ids=ids
        )
        return [
            (
                messages.SUCCESS,
                ngettext(
                    "Invalidated %(count)s cache entry.",
                    "Invalidated %(count)s cache entries.",
                    done.count,
                )
                % {"count": done.count},
            )
        ]

    def back_url(self) -> str:
        """The list of the invalidated site (and cache type and member)."""
        data = self.bulk.cleaned_data if self.bulk.is_valid() else {}
        params = {
            "site": data.get("site"),
            "cache_type": data.get("cache_type") or None,
            "target_id": data.get("member_id"),
        }
        query = urlencode({name: value for name, value in params.items() if value is not None})
        return reverse("dashboard:cache") + (f"?{query}" if query else "")
