"""One bulk-action protocol for the list pages (Django admin's ``response_action``):
validate → cap → confirm → operation → message → back to the filtered list.

Invariant: a bulk action is two POSTs to its list's URL, and the second acts on
exactly the ids the first showed. The first (no ``confirm``) validates the list's
filters and the selection (the ticked ``ids``, or every row the filter matches
with ``select_across`` / ``scope=filter``), caps it (``bulk_limit``, else ``TooMany``)
and answers with the one confirmation template, ``aimonitor/bulk_confirm.html``,
carrying those ids in one hidden input (``listing.RowIdsField``). The second
(``confirm=yes``) hands those ids — never the filter run again — to the domain
operation, which checks permission and scope again, writes and audits; its outcome
comes back as messages on the filtered list. A refusal is a ``Refused`` answered
by ``aimonitor.responses`` (the confirmation page with the reason, at its status);
bad input is the same page at 400; nothing chosen is a warning on the list.
"""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.humanize.templatetags.humanize import intcomma
from django.shortcuts import redirect
from django.template.response import TemplateResponse

from aimonitor.listing import RowIdsField
from aimonitor.operations import BULK_LIMIT
from aimonitor.operations.refusals import Refused, TooMany
from aimonitor.permissions import require
from aimonitor.responses import RefusalMixin

CONFIRM_TEMPLATE = "aimonitor/bulk_confirm.html"
# The confirmation shows the first rows it will change.
SAMPLE_SIZE = 10


class BulkSelectionForm(forms.Form):
    """Which rows a bulk action covers, and whether this POST confirms it.

    ``ids``: the ticked rows, or on the confirmation exactly the rows it showed.
    ``select_across=1`` (the jobs' button) or ``scope=filter`` (the alerts' radio and
    the failures page's group buttons) choose every row the filter matches instead.
    """

    SELECTED, FILTER = "selected", "filter"

    action = forms.ChoiceField()
    ids = RowIdsField(required=False)
    select_across = forms.BooleanField(required=False)
    scope = forms.ChoiceField(required=False, choices=[(SELECTED, SELECTED), (FILTER, FILTER)])
    confirm = forms.ChoiceField(required=False, choices=[("", ""), ("yes", "yes")])
    # A one-time key: a confirmation sent twice acts once (operations.once).
    key = forms.UUIDField(required=False)

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        if "action" in self.fields:  # a form with one action (the cache's) has no field
            self.fields["action"].choices = list(actions)

    @property
    def confirmed(self) -> bool:
        return self.cleaned_data.get("confirm") == "yes"

    @property
    def whole_filter(self) -> bool:
        data = self.cleaned_data
        return bool(data.get("select_across")) or data.get("scope") == self.FILTER


def form_errors(*forms_) -> list[str]:
    """Every error of ``forms_`` as one line each, named by its field."""
    lines = []
    for form in dict.fromkeys(forms_):  # each form once (the cache's is both)
        for name, errors in form.errors.items():
            for error in errors:
                lines.append(error if name == "__all__" else f"{name}: {error}")
    return lines


class BulkActionMixin(RefusalMixin):
    """``post`` of a list view: the bulk action, in two steps (see the module).

    A list fills in ``bulk_permission``, ``bulk_actions`` (``(value, label)``),
    ``confirm_template`` (extending ``aimonitor/bulk_confirm.html``), the two
    messages, ``perform_bulk`` (the operation; returns ``(level, text)`` lines) and,
    where its rows are not its list's, ``bulk_candidates``.
    """

    bulk_permission = ""
    bulk_actions: list[tuple[str, str]] = []
    bulk_form_class = BulkSelectionForm
    bulk_limit = BULK_LIMIT
    confirm_template = CONFIRM_TEMPLATE
    too_many_message = ""  # %(limit)s
    nothing_chosen_message = ""
    back_label = ""  # the confirmation's link back to the list
    submit_class = "primary"  # its confirm button ("danger" where it cannot be undone)
    # Over the cap: back to the list with the message (alerts), else the confirmation
    # page at 400 (jobs, cache). Both are pinned by their pages' tests.
    over_cap_to_list = False

    bulk = filters = None  # the two bound forms of this POST

    def post(self, request, *args, **kwargs):
        require(request.user, self.bulk_permission)
        self.bulk = self.get_bulk_form()
        self.filters = self.get_bulk_filter_form()
        if not (self.bulk.is_valid() and self.filters.is_valid()):
            return self.bulk_invalid()
        self.check_bulk_scope()
        ids = self.get_bulk_ids()
        limit = self.get_bulk_limit()
        if len(ids) > limit:
            raise TooMany(self.too_many_message % {"limit": intcomma(limit)})
        if not ids:
            return self.nothing_chosen()
        if not self.bulk.confirmed:
            self.check_selection(ids)
            return self.render_confirm(ids=ids)
        for level, text in self.perform_bulk(ids):
            messages.add_message(request, level, text)
        return redirect(self.back_url())

    # --- the steps a list may change -------------------------------------------------

    def get_bulk_form(self):
        return self.bulk_form_class(self.request.POST, actions=self.bulk_actions)

    def get_bulk_filter_form(self):
        """The list's filters, carried in the bulk forms' hidden inputs."""
        return self.filter_form_class(self.request.POST, user=self.request.user)

    def bulk_invalid(self):
        """Bad input: the confirmation page with every error, at 400."""
        return self.render_confirm(errors=form_errors(self.bulk, self.filters), status=400)

    def check_bulk_scope(self) -> None:
        """A filter on a site the user does not see is a 403."""
        self.filters.scope()

    def get_bulk_limit(self) -> int:
        return self.bulk_limit

    def bulk_candidates(self):
        """The rows a bulk action may touch: the user's rows of this list."""
        return self.get_base_queryset()

    def get_bulk_ids(self) -> list[int]:
        """The ids the action covers (``bulk_limit`` + 1 at most, to tell "over").

        Before the confirmation: the ticked rows, or the filter's rows. On the
        confirmation: exactly the ids it showed, still among the user's rows.
        """
        limit = self.get_bulk_limit()
        rows = self.bulk_candidates()
        if self.bulk.whole_filter and not self.bulk.confirmed:
            rows = self.filters.filter(rows)
        else:
            posted = self.bulk.cleaned_data["ids"]
            if len(posted) > limit:
                return posted
            rows = rows.filter(pk__in=posted)
        return list(rows.values_list("pk", flat=True)[: limit + 1])

    def check_selection(self, ids: list[int]) -> None:
        """Refuse a selection the operation would do nothing with (e.g. 409)."""

    def nothing_chosen(self):
        messages.warning(self.request, self.nothing_chosen_message)
        return redirect(self.back_url())

    def perform_bulk(self, ids: list[int]) -> list[tuple[int, str]]:
        raise NotImplementedError

    def back_params(self) -> dict:
        """The filters of the list to go back to."""
        return self.filters.active_params() if self.filters.is_valid() else {}

    def back_url(self) -> str:
        raise NotImplementedError

    # --- the confirmation page ------------------------------------------------------

    def bulk_sample(self, ids: list[int]) -> list:
        """The first rows the confirmation shows (newest first)."""
        return list(self.bulk_candidates().filter(pk__in=ids)[:SAMPLE_SIZE])

    def confirm_context(self, ids: list[int]) -> dict:
        """What a list adds to its confirmation (its counts, ...)."""
        return {}

    def render_confirm(self, *, ids=(), errors=(), status=200) -> TemplateResponse:
        """The confirmation of ``ids``, or (``errors``) the reasons nothing was done."""
        ids = list(ids)
        context = {
            "errors": list(errors),
            "action": self.bulk.cleaned_data.get("action") if self.bulk.is_valid() else "",
            "ids": ",".join(map(str, ids)),
            "selected": len(ids),
            "filter_params": self.back_params(),
            "back_url": self.back_url(),
            "action_url": self.request.path,
            "back_label": self.back_label,
            "submit_class": self.submit_class,
            "bulk_limit": self.get_bulk_limit(),
            "bulk": self.bulk,
            "whole_filter": self.bulk.is_valid() and self.bulk.whole_filter,
        }
        if ids and not errors:
            context["sample"] = self.bulk_sample(ids)
            context.update(self.confirm_context(ids))
        return TemplateResponse(self.request, self.confirm_template, context, status=status)

    def refusal_page(self, refusal: Refused):
        """A refusal during the bulk action: the confirmation page saying why (or, over
        the cap with ``over_cap_to_list``, the list with the message)."""
        if self.bulk is None or not self.bulk.is_valid():
            return None  # refused before the forms were read: the shared page
        if isinstance(refusal, TooMany) and self.over_cap_to_list:
            messages.error(self.request, refusal.message)
            return redirect(self.back_url())
        return self.render_confirm(errors=[refusal.message], status=refusal.status)
