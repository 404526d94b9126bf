"""Number formats and server-drawn SVG charts for the dashboard's panels."""

from __future__ import annotations

import datetime as dt
from functools import lru_cache

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat
from django.templatetags.l10n import unlocalize
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext

register = template.Library()

# The trend chart's drawing box (SVG user units; it scales to its container).
WIDTH, HEIGHT = 800, 220
LEFT, RIGHT, TOP, BOTTOM = 48, 48, 12, 28


@register.filter
def as_percent(fraction) -> float:
    """0.8333 → 83.33 (then ``floatformat`` and a "%" in the template)."""
    return round(float(fraction or 0) * 100, 2)


@register.filter
def signed(number) -> str:
    """A change with its sign and thousands separators: "+1,234", "−5.5", "0"."""
    number = float(number or 0)
    text = floatformat(abs(number), "-2g")
    if number > 0:
        return f"+{text}"
    if number < 0:
        return f"\u2212{text}"
    return text


@register.simple_tag
def metric(name: str, raw, shown, unit: str = "") -> str:
    """``<span data-metric=name data-value=raw>shown unit</span>``, a figure for a translated
    sentence to take whole: ``{% metric … as figure %}``, then ``{{ figure }}`` in it."""
    return format_html(
        '<span data-metric="{}" data-value="{}">{}{}</span>', name, unlocalize(raw), shown, unit
    )


@register.inclusion_tag("dashboard/charts.html#trend_chart")
def trend_chart(trend: list[dict], site=None) -> dict:
    """Bars of calls per day and a line of the success rate, as inline SVG geometry."""
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    peak = max((day["calls"] for day in trend), default=0) or 1
    slot = plot_width / max(len(trend), 1)
    days = []
    for index, day in enumerate(trend):
        bar_height = day["calls"] / peak * plot_height
        centre = LEFT + slot * (index + 0.5)
        days.append(
            {
                **day,
                "label": day["date"][5:],  # MM-DD
                "x": round(centre - slot * 0.3, 1),
                "width": round(slot * 0.6, 1),
                "y": round(TOP + plot_height - bar_height, 1),
                "height": round(bar_height, 1),
                "centre": round(centre, 1),
                "rate_y": round(TOP + (1 - day["success_rate"]) * plot_height, 1),
            }
        )
    # The success rate of a day without calls means nothing: the line skips it.
    line = " ".join(f"{day['centre']},{day['rate_y']}" for day in days if day["calls"])
    return {
        "site": site,
        "days": days,
        "line": line,
        "peak": peak if any(day["calls"] for day in trend) else 0,
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right_edge": WIDTH - RIGHT,
        "top": TOP,
        "baseline": TOP + plot_height,
        "label_y": HEIGHT - 8,
        "top_label_y": TOP + 10,
        "left_label_x": LEFT - 6,
        "right_label_x": WIDTH - RIGHT + 6,
    }


@register.inclusion_tag("dashboard/charts.html#share_bar")
def share_bar(fraction) -> dict:
    """A horizontal bar filled to ``fraction`` (0–1; more is drawn full)."""
    return {"filled": round(min(max(float(fraction or 0), 0.0), 1.0) * 100, 2)}


# The sparkline's drawing box: small, beside the queue's figures on /jobs/.
SPARK_WIDTH, SPARK_HEIGHT = 240, 40


@register.inclusion_tag("dashboard/charts.html#sparkline")
def sparkline(series: list[dict], title: str = "") -> dict:
    """A line of ``series[i]["count"]`` over time, with a dot on the newest point."""
    peak = max((point["count"] for point in series), default=0) or 1
    step = SPARK_WIDTH / max(len(series) - 1, 1)
    points = [
        (
            round(index * step, 1),
            round(SPARK_HEIGHT - 2 - point["count"] / peak * (SPARK_HEIGHT - 4), 1),
        )
        for index, point in enumerate(series)
    ]
    return {
        "points": " ".join(f"{x},{y}" for x, y in points),
        "last": points[-1] if points else None,
        "width": SPARK_WIDTH,
        "height": SPARK_HEIGHT,
        "title": title,
    }


# A failures sparkline draws at most this many bars: a 30-day range's 720 hours are summed
# into bins of several hours (the JSON keeps every hour).
SPARK_BARS = 48


@register.simple_tag
def failure_sparkline(hourly: list[dict], width: int = 160, height: int = 28) -> str:
    """Bars of failures per hour (or per bin of hours); each bar says its time and count on
    hover and keyboard focus. Built in Python: a page holds up to MAX_GROUPS of them, all
    over the same hours (so each bin's label is made once per page, not once per group)."""
    size = max(1, -(-len(hourly) // SPARK_BARS))
    zone = str(timezone.get_current_timezone())
    bins = []
    for start in range(0, len(hourly), size):
        part = hourly[start : start + size]
        last = part[-1]["hour"] if len(part) > 1 else None
        label = _bin_label(part[0]["hour"], last, zone)
        bins.append((label, sum(slot["count"] for slot in part)))
    peak = max((count for _, count in bins), default=0) or 1
    step = width / max(len(bins), 1)
    bar_width = f"{max(step * 0.8, 0.5):.2f}"
    template = gettext("%(hour)s: %(n)s failures")
    bars = []
    for index, (label, count) in enumerate(bins):
        bar_height = max(count / peak * height, 1 if count else 0)
        title = escape(template % {"hour": label, "n": _count_text(count, get_language())})
        x = f"{index * step:.2f}"
        bars.append(
            f'<g class="spark-hour" tabindex="0"><title>{title}</title>'
            f'<rect class="spark-slot" x="{x}" y="0" width="{bar_width}" height="{height}"/>'
            f'<rect class="chart-bar" x="{x}" y="{height - bar_height:.2f}" '
            f'width="{bar_width}" height="{bar_height:.2f}"/></g>'
        )
    inner = mark_safe("".join(bars))  # numbers, and titles escaped above
    return format_html(
        '<svg class="chart sparkline" viewBox="0 0 {} {}" width="{}" height="{}" role="img" '
        'aria-label="{}">{}</svg>',
        width,
        height,
        width,
        height,
        gettext("Failures per hour"),
        inner,
    )


@lru_cache(maxsize=4096)
def _bin_label(first: dt.datetime, last: dt.datetime | None, zone: str) -> str:
    """ "2026-11-28 14:00" for one hour, "2026-11-28 14:00–17:00" for a bin of hours."""
    label = timezone.localtime(first).strftime("%Y-%m-%d %H:00")
    if last is not None:
        label += (timezone.localtime(last) + dt.timedelta(hours=1)).strftime("–%H:00")
    return label


@lru_cache(maxsize=4096)
def _count_text(count: int, language: str | None) -> str:
    """``intcomma(count)`` in ``language``: a page's sparklines repeat the same counts."""
    return intcomma(count)
