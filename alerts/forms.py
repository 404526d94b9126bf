"""The alerts page's filters and its bulk-action form."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from aimonitor.listing import AppTypeField, FilterForm, RowIdsField
from aimonitor.models import RunLog

PENDING, ALL = RunLog.AlertStatus.PENDING, "all"


class AlertFilterForm(FilterForm):
    """Alerts by triage state (pending unless asked otherwise), app, site and days."""

    alert_status = forms.ChoiceField(
        label=_("Alert status"),
        required=False,
        # Pending first: an empty select shows it, matching the default filter.
        choices=[*RunLog.AlertStatus.choices, (ALL, _("all"))],
    )
    app_type = AppTypeField(label=_("App type"), max_length=64)

    field_order = ["alert_status", "app_type", "site", "date_from", "date_to", "page_size"]
    exact_filters = {"app_type": "app_type"}

    def filter(self, queryset):
        """The alerts in the chosen triage state, narrowed by the common filters."""
        state = self.cleaned_data.get("alert_status") or PENDING
        return super().filter(queryset.with_alert_status(state))


class BulkActionForm(forms.Form):
    """Step one (no ``confirm``) asks; step two (``confirm=yes``) acts."""

    SELECTED, FILTER = "selected", "filter"

    action = forms.ChoiceField(choices=[("acknowledge", _("Acknowledge")), ("ignore", _("Ignore"))])
    scope = forms.ChoiceField(
        required=False,
        choices=[
            (SELECTED, _("The selected alerts")),
            (FILTER, _("Every alert matching the filter")),
        ],
    )
    ids = RowIdsField(required=False)
    confirm = forms.ChoiceField(required=False, choices=[("yes", _("yes"))])

    @property
    def confirmed(self) -> bool:
        return self.cleaned_data.get("confirm") == "yes"

    @property
    def whole_filter(self) -> bool:
        return self.cleaned_data.get("scope") == self.FILTER
