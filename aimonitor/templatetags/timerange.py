"""Template helpers of the shared time-range control (``aimonitor/time_range.html``)."""

from __future__ import annotations

from urllib.parse import urlencode

from django import template

from aimonitor.timerange import PARAMS, PRESETS

register = template.Library()


@register.simple_tag(takes_context=True)
def other_params(context, *names) -> list[tuple[str, str]]:
    """``[(name, value)]`` of the query string without ``names`` and paging, as hidden inputs."""
    drop = {*names, "page"}
    return [(k, v) for k, values in context["request"].GET.lists() if k not in drop for v in values]


@register.simple_tag
def range_presets() -> list[str]:
    return list(PRESETS)


@register.simple_tag(takes_context=True)
def chosen_range(context, default: str | None = None) -> str:
    """The preset in force: the ``range`` given, else ``default`` when no custom window."""
    get = context["request"].GET
    if get.get("range"):
        return get["range"]
    return "" if get.get("since") or get.get("until") else (default or "")


@register.simple_tag(takes_context=True)
def range_query(context) -> str:
    """The range and site parameters, to carry to the other pages that show calls."""
    get = context["request"].GET
    keep = [(name, get[name]) for name in (*PARAMS, "site") if get.get(name)]
    return urlencode(keep)
