"""Django admin: raw, read-only records of the AI tables, scoped to the user's sites,
and the console's own models (site access and names editable, audit read-only)."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _

from aimonitor.listing import COUNT_CAP, MAX_ID
from aimonitor.models import (
    AppPrice,
    AuditEvent,
    CacheEntry,
    RunLog,
    SiteAccess,
    SiteName,
    TriggerJob,
)
from aimonitor.operations import cache as cache_ops
from aimonitor.operations import jobs as job_ops
from aimonitor.operations.alerts import (
    BULK_LIMIT,
    TooManyAlerts,
    can_triage,
    set_alert_status,
)
from aimonitor.sites import site_choices


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: the change list never counts a whole table."""

    @cached_property
    def count(self) -> int:
        return self.object_list.values("pk")[: COUNT_CAP + 1].count()


class SiteListFilter(admin.SimpleListFilter):
    title = _("site")
    parameter_name = "site_id"

    def lookups(self, request, model_admin):
        return [(str(site_id), label) for site_id, label in site_choices(request.user)]

    def queryset(self, request, queryset):
        value = self.value()
        # ASCII digits only: "²".isdigit() is True, but int() refuses it.
        if value and value.isascii() and value.isdigit() and int(value) <= MAX_ID:
            return queryset.filter(site_id=int(value))
        return queryset


def distinct_recent_values(queryset, column: str, days: int = 30) -> list[str]:
    """Distinct values of a short text column among ``queryset``'s last ``days`` days.

    Bounded by created_at, so it stays cheap on large tables (admin filters must
    not run SELECT DISTINCT over every row ever written); ``queryset`` is the user's
    scoped rows, so no other site's values are offered.
    """
    since = timezone.now() - dt.timedelta(days=days)
    values = queryset.filter(created_at__gte=since).order_by(column).values_list(column, flat=True)
    return list(values.distinct()[:200])


class RecentValuesListFilter(admin.SimpleListFilter):
    """A filter on a text column whose choices are the values seen in the last 30 days."""

    column = ""

    def lookups(self, request, model_admin):
        return [
            (value, value)
            for value in distinct_recent_values(model_admin.get_queryset(request), self.column)
        ]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(**{self.column: self.value()})
        return queryset


class AppTypeListFilter(RecentValuesListFilter):
    title = _("app type")
    parameter_name = "app_type"
    column = "app_type"


class EventTypeListFilter(RecentValuesListFilter):
    title = _("event type")
    parameter_name = "event_type"
    column = "event_type"


class CacheTypeListFilter(RecentValuesListFilter):
    title = _("cache type")
    parameter_name = "cache_type"
    column = "cache_type"


class AIRecordAdmin(admin.ModelAdmin):
    """Read-only raw records of one AI table, scoped to the user's sites."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    date_hierarchy = None
    ordering = ("-created_at", "-id")

    def get_queryset(self, request):
        return self.model.objects.visible_to(request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def response_action(self, request, queryset):
        """Selected values that are not row ids select nothing (Django would answer 500)."""
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(
            value.isascii() and value.isdigit() and int(value) <= MAX_ID for value in selected
        ):
            self.message_user(request, _("No valid rows were selected."), messages.WARNING)
            return None
        return super().response_action(request, queryset)

    def get_search_results(self, request, queryset, search_term):
        """Digits search member ids exactly (index-friendly); other text searches errors."""
        term = search_term.strip()
        if not term:
            return queryset, False
        if term.isascii() and term.isdigit() and len(term) < 19:
            return queryset.filter(member_id=int(term)), False
        return queryset.filter(error_message__icontains=term), False


@admin.register(RunLog)
class RunLogAdmin(AIRecordAdmin):
    list_display = (
        "id",
        "created_at",
        "site_id",
        "app_type",
        "trigger_type",
        "member_id",
        "status",
        "alert_status",
        "tokens_used",
        "latency_ms",
    )
    list_filter = ("status", AppTypeListFilter, SiteListFilter, "alert_status")
    search_fields = ("member_id", "error_message")
    search_help_text = _("A number searches member ids; other text searches error messages.")
    actions = ["acknowledge_alerts", "ignore_alerts"]

    def get_fields(self, request, obj=None):
        fields = [f.name for f in self.model._meta.fields]
        if not request.user.has_perm("aimonitor.view_prompt"):
            fields = [f for f in fields if f not in ("request_prompt", "response_text")]
        return fields

    def has_triage_permission(self, request) -> bool:
        return can_triage(request.user)

    @admin.action(permissions=["triage"], description=_("Acknowledge the selected alerts"))
    def acknowledge_alerts(self, request, queryset):
        self._triage(request, queryset, "acknowledge")

    @admin.action(permissions=["triage"], description=_("Ignore the selected alerts"))
    def ignore_alerts(self, request, queryset):
        self._triage(request, queryset, "ignore")

    def _triage(self, request, queryset, action: str) -> None:
        """The same operation (and audit) as the alerts page; non-alerts are skipped."""
        try:
            result = set_alert_status(request.user, queryset, action)
        except TooManyAlerts:
            self.message_user(
                request,
                _("Select at most %(limit)s alerts at a time. Nothing was changed.")
                % {"limit": intcomma(BULK_LIMIT)},
                messages.ERROR,
            )
            return
        for line in result.summary():
            self.message_user(request, line, messages.SUCCESS)


@admin.register(TriggerJob)
class TriggerJobAdmin(AIRecordAdmin):
    list_display = (
        "id",
        "created_at",
        "site_id",
        "event_type",
        "member_id",
        "status",
        "is_forced",
        "app_chain",
    )
    list_filter = ("status", EventTypeListFilter, SiteListFilter, "is_forced")
    search_fields = ("member_id", "error_message")
    search_help_text = _("A number searches member ids; other text searches error messages.")
    actions = ["retry_jobs"]

    def has_retry_permission(self, request) -> bool:
        return request.user.has_perm(job_ops.RETRY_PERMISSION)

    @admin.action(permissions=["retry"], description=_("Retry the selected jobs"))
    def retry_jobs(self, request, queryset):
        """The same operation (and audit) as the jobs page: one forced copy per job."""
        ids = list(queryset.values_list("pk", flat=True)[: job_ops.BULK_LIMIT + 1])
        try:
            retried = job_ops.retry_jobs(request.user, ids)
        except job_ops.TooManyJobs:
            self.message_user(
                request,
                _("Select at most %(limit)s jobs at a time. Nothing was retried.")
                % {"limit": intcomma(job_ops.BULK_LIMIT)},
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            _("Retried %(count)s jobs as new forced jobs.") % {"count": len(retried.new_ids)},
            messages.SUCCESS,
        )


@admin.register(CacheEntry)
class CacheEntryAdmin(AIRecordAdmin):
    list_display = (
        "id",
        "created_at",
        "site_id",
        "cache_type",
        "target_id",
        "status",
        "expires_at",
    )
    list_filter = ("status", CacheTypeListFilter, SiteListFilter)
    search_fields = ("target_id",)
    search_help_text = _("Searches the target id (usually a member id).")
    actions = ["invalidate_entries"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        return (queryset.filter(target_id=term), False) if term else (queryset, False)

    def has_invalidate_permission(self, request) -> bool:
        return request.user.has_perm(cache_ops.INVALIDATE_PERMISSION)

    @admin.action(permissions=["invalidate"], description=_("Invalidate the selected entries"))
    def invalidate_entries(self, request, queryset):
        """The same operation (and audit) as the cache page; already invalid ones stay."""
        done = cache_ops.invalidate_entries(request.user, queryset.values_list("pk", flat=True))
        self.message_user(
            request,
            _("Invalidated %(count)s cache entries.") % {"count": intcomma(done.count)},
            messages.SUCCESS,
        )


@admin.register(SiteAccess)
class SiteAccessAdmin(admin.ModelAdmin):
    list_display = ("user", "all_sites", "site_ids")
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)


@admin.register(SiteName)
class SiteNameAdmin(admin.ModelAdmin):
    list_display = ("site_id", "name")
    search_fields = ("name",)


@admin.register(AppPrice)
class AppPriceAdmin(admin.ModelAdmin):
    """Price per 1,000 tokens per app type; unlisted apps use AIMONITOR_TOKEN_PRICE_PER_1K."""

    list_display = ("app_type", "price_per_1k")
    search_fields = ("app_type",)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "actor_username",
        "action",
        "target_table",
        "target_ids",
        "site_id",
    )
    list_filter = ("action", "target_table")
    search_fields = ("actor_username",)
    readonly_fields = [f.name for f in AuditEvent._meta.fields]

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        from aimonitor.access import ALL_SITES, visible_site_ids

        site_ids = visible_site_ids(request.user)
        return queryset if site_ids is ALL_SITES else queryset.filter(site_id__in=site_ids)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
