"""Django admin for notifications: admins who see every site edit channels and rules
(they serve every site; audited like every admin write); incidents and deliveries are
read-only records scoped to the user's sites. A channel's saved secret is never shown
again."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from aimonitor.admin import AllSitesOnlyAdmin, ConsoleAdmin
from aimonitor.scope import Scope
from alerts.models import AlertRule, Channel, Delivery, Incident

# procrastinate's own job tables are the worker's internals, not console records: the
# notifications' outcome is on the Delivery rows (shown beside each incident).
for _model in list(admin.site._registry):
    if _model._meta.app_label == "procrastinate":
        admin.site.unregister(_model)


class ChannelForm(forms.ModelForm):
    secret = forms.CharField(
        label=_("secret"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_(
            "Write-only: a saved secret is never shown. Leave empty to keep it; "
            "tick “clear secret” to remove it."
        ),
    )
    clear_secret = forms.BooleanField(label=_("clear secret"), required=False)

    class Meta:
        model = Channel
        fields = ["name", "kind", "url", "secret", "clear_secret", "recipients", "enabled"]

    def clean_secret(self) -> str:
        """Blank keeps the saved secret (it is never sent back to the browser)."""
        secret = self.cleaned_data.get("secret", "")
        if not secret and self.instance.pk:
            return self.instance.secret
        return secret

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("clear_secret"):
            cleaned["secret"] = ""
            self.instance.secret = ""
        return cleaned


class CascadesToRecordsAdmin(AllSitesOnlyAdmin):
    """Deleting a rule or a channel deletes its incidents and deliveries with it (its own
    history, listed on the confirmation page), although nobody edits those records."""

    def get_deleted_objects(self, objs, request):
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)
        return deleted, counts, set(), protected


@admin.register(Channel)
class ChannelAdmin(CascadesToRecordsAdmin):
    form = ChannelForm
    list_display = ["name", "kind", "url", "has_secret", "enabled"]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "url", "recipients"]

    @admin.display(boolean=True, description=_("secret set"))
    def has_secret(self, channel: Channel) -> bool:
        return bool(channel.secret)


@admin.register(AlertRule)
class AlertRuleAdmin(CascadesToRecordsAdmin):
    list_display = [
        "name",
        "kind",
        "site_id",
        "app_type",
        "window_minutes",
        "threshold",
        "min_calls",
        "repeat_minutes",
        "enabled",
    ]
    list_filter = ["kind", "enabled"]
    search_fields = ["name", "app_type"]
    filter_horizontal = ["channels"]


class ReadOnlyAdmin(ConsoleAdmin):
    site_path = "site_id"

    def get_queryset(self, request):
        """Only the records of the user's sites (an every-site incident: every-site people)."""
        queryset = super().get_queryset(request)
        scope = Scope.for_user(request.user)
        if scope.is_all_sites:
            return queryset
        return queryset.filter(**{f"{self.site_path}__in": scope.site_ids})

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class DeliveryInline(admin.TabularInline):
    model = Delivery
    extra = 0
    can_delete = False
    fields = ["event", "sequence", "channel", "status", "attempts", "http_status", "error"]
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Incident)
class IncidentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "rule",
        "site_id",
        "app_type",
        "last_value",
        "started_at",
        "resolved_at",
        "acknowledged_by",
    ]
    list_filter = ["rule__kind"]
    list_select_related = ["rule", "acknowledged_by"]
    inlines = [DeliveryInline]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    site_path = "incident__site_id"
    list_display = [
        "id",
        "incident",
        "channel",
        "event",
        "sequence",
        "status",
        "attempts",
        "http_status",
    ]
    list_filter = ["event", "status"]
    list_select_related = ["incident__rule", "channel"]
