"""Small template helpers shared by every page."""

from __future__ import annotations

from django import template

from aimonitor.models import site_label

register = template.Library()


@register.filter
def site_name(site_id, site_labels: dict | None = None) -> str:
    """``{{ row.site_id|site_name:site_labels }}`` — the site's name or "Site N"."""
    if site_id is None:
        return ""
    return (site_labels or {}).get(site_id) or str(site_label(site_id))


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
