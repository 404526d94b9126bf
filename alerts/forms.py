"""The alerts page's filters (its bulk action uses ``aimonitor.bulk.BulkSelectionForm``)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from aimonitor.listing import (
    AppTypeField,
    BigIntegerField,
    FilterForm,
    SuggestionsInput,
)
from aimonitor.models import ALERT_STATUSES, RunLog
from aimonitor.signature import LENGTH as SIGNATURE_LENGTH
from aimonitor.signature import ErrorSignature
from aimonitor.timerange import TimeRangeForm

PENDING, ALL = RunLog.AlertStatus.PENDING, "all"


class StatusesField(forms.MultipleChoiceField):
    """Call statuses, repeated (``status=failed&status=timeout``) or comma-separated."""

    widget = forms.CheckboxSelectMultiple

    def to_python(self, value) -> list[str]:
        values = [value] if isinstance(value, str) else list(value or [])
        return sorted({part.strip() for v in values for part in str(v).split(",") if part.strip()})


class AlertFilterForm(TimeRangeForm, FilterForm):
    """Alerts by triage state (pending unless asked otherwise), call status, app, error
    signature, member, site, days and time range."""

    alert_status = forms.ChoiceField(
        label=_("Alert status"),
        required=False,
        # Pending first: an empty select shows it, matching the default filter.
        choices=[*RunLog.AlertStatus.choices, (ALL, _("all"))],
    )
    app_type = AppTypeField(label=_("App type"), max_length=64)
    status = StatusesField(
        label=_("Status"),
        required=False,
        choices=[(s, RunLog.Status(s).label) for s in ALERT_STATUSES],
    )
    member_id = BigIntegerField(label=_("Member id"))
    # A signature (SPEC.md §8); given but empty selects the calls without a message.
    error = forms.CharField(
        label=_("Error signature"), required=False, max_length=SIGNATURE_LENGTH, strip=False
    )

    field_order = [
        "alert_status",
        "status",
        "app_type",
        "error",
        "member_id",
        "site",
        "date_from",
        "date_to",
        "page_size",
    ]
    exact_filters = {"app_type": "app_type", "member_id": "member_id"}

    def __init__(self, *args, app_types=(), **kwargs):
        super().__init__(*args, **kwargs)
        if app_types:  # the app types of the user's sites, as suggestions
            self.fields["app_type"].widget = SuggestionsInput(app_types)

    def filter(self, queryset):
        """The alerts in the chosen triage state, narrowed by the common filters."""
        state = self.cleaned_data.get("alert_status") or PENDING
        queryset = super().filter(queryset.with_alert_status(state))
        if self.cleaned_data.get("status"):
            queryset = queryset.filter(status__in=self.cleaned_data["status"])
        if "error" in self.data:
            signature = self.cleaned_data.get("error") or ""
            queryset = queryset.alias(signature=ErrorSignature()).filter(signature=signature)
        return queryset

    def active_params(self) -> dict[str, str]:
        """The filters in force; statuses as one comma-separated value, an empty error kept."""
        params = super().active_params()
        if self.data.get("status"):
            given = self.data.getlist("status") if hasattr(self.data, "getlist") else []
            params["status"] = ",".join(StatusesField().to_python(given or self.data["status"]))
        if "error" in self.data:
            params["error"] = self.data.get("error", "")
        return params
