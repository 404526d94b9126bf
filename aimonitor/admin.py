"""Django admin: raw, read-only records of the AI tables, scoped to the user's sites,
and the console's own models.

Every registered model is either scoped to the user's sites like the AI tables (run
logs, jobs, cache, site names, the audit trail) or reserved to people who see every
site (site access, users, groups: who sees what). Every add, change and delete made
through the admin records an ``AuditEvent``. Change lists accept only the lookups
their filters use: a made-up one (``?created_at__year=0``) is a 400, never a 500.
"""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.contrib.auth import admin as auth_admin
from django.contrib.auth.models import Group, User
from django.contrib.humanize.templatetags.humanize import intcomma
from django.core.paginator import Paginator
from django.http import Http404
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from aimonitor.listing import COUNT_CAP, MAX_ID, RowIdsField, capped_count, capped_text
from aimonitor.models import (
    AppPrice,
    AuditEvent,
    CacheEntry,
    RunLog,
    SiteAccess,
    SiteName,
    TriggerJob,
)
from aimonitor.operations import BULK_LIMIT
from aimonitor.operations import cache as cache_ops
from aimonitor.operations import jobs as job_ops
from aimonitor.operations.alerts import set_alert_status
from aimonitor.operations.refusals import TooMany
from aimonitor.permissions import INVALIDATE_CACHE, RETRY_JOB, TRIAGE_ALERT, VIEW_PROMPT, allowed
from aimonitor.scope import Scope
from aimonitor.sites import site_choices


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows: the change list never counts a whole table."""

    @cached_property
    def count(self) -> int:
        return capped_count(self.object_list)


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


def sees_all_sites(user) -> bool:
    return Scope.for_user(user).is_all_sites


def scope_to_sites(queryset, user):
    """Only the rows of the sites ``user`` may see (``site_id`` column)."""
    scope = Scope.for_user(user)
    return queryset if scope.is_all_sites else queryset.filter(site_id__in=scope.site_ids)


class ConsoleAdmin(admin.ModelAdmin):
    """What every model in the console's admin shares.

    - Change lists accept only the lookups of their own filters: anything else
      (``?created_at__year=0``, ``?target_ids__contains=x``) is refused with a 400
      instead of reaching the database as a query that fails while rendering.
    - The history page of an object outside the user's scope is a 404.
    - Every add, change and delete records an ``AuditEvent`` in the admin's own
      transaction (who, what, which site, which fields).
    """

    def lookup_allowed(self, lookup, value, request=None):
        for spec in self.list_filter:
            if isinstance(spec, tuple | list):
                spec = spec[0]
            if isinstance(spec, str):
                name = spec
            elif isinstance(spec, type) and issubclass(spec, admin.SimpleListFilter):
                if lookup == spec.parameter_name:
                    return True
                continue
            else:
                continue
            suffix = lookup.removeprefix(name)
            if suffix in ("", "__exact", "__isnull", "__id__exact"):
                return super().lookup_allowed(lookup, value, request)
        return False

    def history_view(self, request, object_id, extra_context=None):
        if self.get_object(request, unquote(object_id)) is None:
            raise Http404
        return super().history_view(request, object_id, extra_context)

    # --- The audit trail of admin writes -------------------------------------

    audit_site_field = None  # the column naming the row's site, if it has one

    def audit(self, request, action: str, objects, details: dict) -> None:
        by_site: dict = {}
        for obj in objects:
            site = getattr(obj, self.audit_site_field) if self.audit_site_field else None
            by_site.setdefault(site, []).append(obj)
        for site_id, rows in by_site.items():
            AuditEvent.objects.record(
                actor=request.user,
                action=action,
                target_table=self.model._meta.db_table,
                target_ids=[row.pk for row in rows],
                site_id=site_id,
                details={
                    "model": self.model._meta.label_lower,
                    "objects": [str(row) for row in rows],
                    **details,
                },
            )

    def save_model(self, request, obj, form, change):
        before = str(self.model.objects.get(pk=obj.pk)) if change else None
        super().save_model(request, obj, form, change)
        details = {"fields": sorted(form.changed_data)}
        if before is not None:
            details["before"] = before
        action = AuditEvent.Action.ADMIN_CHANGE if change else AuditEvent.Action.ADMIN_ADD
        self.audit(request, action, [obj], details)

    def delete_model(self, request, obj):
        self.audit(request, AuditEvent.Action.ADMIN_DELETE, [obj], {})
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        self.audit(request, AuditEvent.Action.ADMIN_DELETE, list(queryset), {})
        super().delete_queryset(request, queryset)


class AllSitesOnlyAdmin(ConsoleAdmin):
    """Reserved to people who see every site (superusers, all-sites admins): who may
    see what is not for a site-limited admin to read or change."""

    def has_module_permission(self, request):
        return sees_all_sites(request.user) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return sees_all_sites(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return sees_all_sites(request.user) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return sees_all_sites(request.user) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return sees_all_sites(request.user) and super().has_delete_permission(request, obj)


class AIRecordAdmin(ConsoleAdmin):
    """Read-only raw records of one AI table, scoped to the user's sites."""

    paginator = CappedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    date_hierarchy = None
    ordering = ("-created_at", "-id")

    def get_queryset(self, request):
        return self.model.objects.visible_to(Scope.for_user(request.user))

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        context = getattr(response, "context_data", None)
        # "All 10001 selected" would be the paginator's cap speaking: say "10,000+".
        if context and "cl" in context and context["cl"].result_count > COUNT_CAP:
            note = ngettext("%(total_count)s selected", "All %(total_count)s selected", 2)
            context["selection_note_all"] = note % {
                "total_count": capped_text(context["cl"].result_count)
            }
        return response

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def response_action(self, request, queryset):
        """Selected values that are not row ids select nothing (Django would answer 500)."""
        try:  # the bulk actions' one id-list parser (listing.RowIdsField)
            selected = RowIdsField(required=False).clean(
                request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
            )
        except forms.ValidationError:
            self.message_user(request, _("No valid rows were selected."), messages.WARNING)
            return None
        request.POST = request.POST.copy()
        request.POST.setlist(helpers.ACTION_CHECKBOX_NAME, [str(pk) for pk in selected])
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
        if not allowed(request.user, VIEW_PROMPT):
            fields = [f for f in fields if f not in ("request_prompt", "response_text")]
        return fields

    def has_triage_permission(self, request) -> bool:
        return allowed(request.user, TRIAGE_ALERT)

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
        except TooMany:
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
        return allowed(request.user, RETRY_JOB)

    @admin.action(permissions=["retry"], description=_("Retry the selected jobs"))
    def retry_jobs(self, request, queryset):
        """The same operation (and audit) as the jobs page: one forced copy per job."""
        ids = list(queryset.values_list("pk", flat=True)[: BULK_LIMIT + 1])
        try:
            retried = job_ops.retry_jobs(request.user, ids)
        except TooMany:
            self.message_user(
                request,
                _("Select at most %(limit)s jobs at a time. Nothing was retried.")
                % {"limit": intcomma(BULK_LIMIT)},
                messages.ERROR,
            )
            return
        self.message_user(
            request,
            _("Retried %(count)s jobs as new forced jobs.") % {"count": len(retried.new_ids)},
            messages.SUCCESS,
        )
        if retried.already_retried or retried.unfinished:
            self.message_user(
                request,
                _(
                    "Left out %(retried)s already retried and %(unfinished)s pending or "
                    "running jobs."
                )
                % {
                    "retried": len(retried.already_retried),
                    "unfinished": len(retried.unfinished),
                },
                messages.WARNING,
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
        return allowed(request.user, INVALIDATE_CACHE)

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
class SiteAccessAdmin(AllSitesOnlyAdmin):
    list_display = ("user", "all_sites", "site_ids")
    search_fields = ("user__username",)
    autocomplete_fields = ("user",)


class SiteNameForm(forms.ModelForm):
    """A site name may only be given to a site the user holds."""

    class Meta:
        model = SiteName
        fields = ["site_id", "name"]

    def clean_site_id(self):
        site_id = self.cleaned_data["site_id"]
        if not Scope.for_user(self.request.user).sees(site_id):
            raise forms.ValidationError(
                _("You do not have access to site %(site)s."), params={"site": site_id}
            )
        return site_id


@admin.register(SiteName)
class SiteNameAdmin(ConsoleAdmin):
    list_display = ("site_id", "name")
    search_fields = ("name",)
    form = SiteNameForm
    audit_site_field = "site_id"

    def get_queryset(self, request):
        return scope_to_sites(super().get_queryset(request), request.user)

    def get_readonly_fields(self, request, obj=None):
        # The site id is the key: renaming one site must not create or move another.
        return ("site_id",) if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        return type(form.__name__, (form,), {"request": request})


@admin.register(AppPrice)
class AppPriceAdmin(AllSitesOnlyAdmin):
    """Price per 1,000 tokens per app type; unlisted apps use AIMONITOR_TOKEN_PRICE_PER_1K.
    A price holds for every site, so only people who see every site set it."""

    list_display = ("app_type", "price_per_1k")
    search_fields = ("app_type",)


@admin.register(AuditEvent)
class AuditEventAdmin(ConsoleAdmin):
    list_display = (
        "created_at",
        "actor_username",
        "action",
        "target_table",
        "row_ids",
        "site_id",
    )
    list_filter = ("action", "target_table")
    search_fields = ("actor_username",)
    search_help_text = _("A number finds the events about that row id; other text, the person.")
    # The ids are shown folded (row_ids) instead of the raw field: one bulk action can
    # list thousands of them.
    readonly_fields = [f.name for f in AuditEvent._meta.fields if f.name != "target_ids"] + [
        "row_ids"
    ]

    @admin.display(description=_("row ids"))
    def row_ids(self, event):
        """The first ids and "and N more", the whole list on demand (<details>)."""
        return render_to_string("aimonitor/id_list.html", {"ids": event.target_ids})

    def get_search_results(self, request, queryset, search_term):
        """Digits find the events that touched that row id; other text the actor."""
        term = search_term.strip()
        if term.isascii() and term.isdigit() and int(term) <= MAX_ID:
            return queryset.filter(target_ids__contains=[int(term)]), False
        return super().get_search_results(request, queryset, search_term)

    def get_queryset(self, request):
        return scope_to_sites(super().get_queryset(request), request.user)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# Users and groups decide who sees what: reserved like site access, and audited.
admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class UserAdmin(AllSitesOnlyAdmin, auth_admin.UserAdmin):
    pass


@admin.register(Group)
class GroupAdmin(AllSitesOnlyAdmin, auth_admin.GroupAdmin):
    pass
