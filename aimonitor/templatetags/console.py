"""Small template helpers shared by every page."""

from __future__ import annotations

from django import template
from django.utils.html import format_html
from django.utils.translation import gettext_noop

from aimonitor.listing import capped_text
from aimonitor.models import site_label

register = template.Library()

# Status codes that aimonitor/status.html shows, translated, when no label is given:
# English shows the code as it is, the catalogue gives every other language its word.
STATUS_CODES = (
    gettext_noop("success"),
    gettext_noop("failed"),
    gettext_noop("timeout"),
    gettext_noop("circuit_open"),
    gettext_noop("running"),
    gettext_noop("pending"),
    gettext_noop("acknowledged"),
    gettext_noop("ignored"),
    gettext_noop("skipped_duplicate"),
    gettext_noop("valid"),
    gettext_noop("invalidated"),
)


@register.filter
def site_name(site_id, site_labels: dict | None = None) -> str:
    """``{{ row.site_id|site_name:site_labels }}`` — the site's name or "Site N"."""
    if site_id is None:
        return ""
    return (site_labels or {}).get(site_id) or str(site_label(site_id))


@register.filter
def under(path: str, prefix: str) -> bool:
    """``{% if request.path|under:runs_url %}`` — the path is that page or one below it."""
    return bool(prefix) and str(path).startswith(prefix)


@register.filter
def contains(collection, item) -> bool:
    """``failed|contains:"today"`` — ``item in collection``, for an include's ``with``."""
    return item in (collection or ())


@register.filter
def capped(count) -> str:
    """``{{ page.count|capped }}`` — a count that stopped at COUNT_CAP, as "10,000+"."""
    return capped_text(int(count or 0))


@register.simple_tag(takes_context=True)
def query_with(context, **changes) -> str:
    """The current query string with some parameters replaced (``None`` drops one)."""
    params = context["request"].GET.copy()
    for key, value in changes.items():
        if value is None or value == "":
            params.pop(key, None)
        else:
            params[key] = value
    return params.urlencode()


# The cells several lists share.


@register.inclusion_tag("aimonitor/when.html")
def when(moment) -> dict:
    """``{% when run.created_at %}`` — a moment in a list: the exact local time, its age on hover."""
    return {"when": moment}


@register.inclusion_tag("aimonitor/ago.html")
def ago(moment) -> dict:
    """``{% ago app.last_call_at %}`` — a moment as its age, the exact local time on hover."""
    return {"when": moment}


@register.inclusion_tag("aimonitor/exact_time.html")
def exact_time(moment) -> dict:
    """``{% exact_time event.created_at %}`` — the exact local time beside a relative one."""
    return {"when": moment}


@register.inclusion_tag("aimonitor/status.html")
def status(code, label="") -> dict:
    """``{% status job.status job.get_status_display %}`` — a status badge; without a
    label, the code itself, translated."""
    return {"status": code, "label": label}


@register.simple_tag(takes_context=True)
def filter_link(context, name: str, value) -> str:
    """``{% filter_link "member_id" run.member_id %}`` — the value as a link to this list
    narrowed to it (first page); nothing when there is no value (None, "", 0)."""
    if not value:
        return ""
    return format_html(
        '<a href="?{}">{}</a>', query_with(context, **{name: value, "page": None}), value
    )
