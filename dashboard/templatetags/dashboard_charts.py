"""Number formats and server-drawn SVG charts for the dashboard's panels."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

from django import template
from django.contrib.humanize.templatetags.humanize import intcomma
from django.template.defaultfilters import floatformat
from django.templatetags.l10n import unlocalize
from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import mark_safe
from django.utils.translation import get_language, gettext, ngettext

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
SPARK_WIDTH_FAILURES, SPARK_HEIGHT_FAILURES = 160, 28


@dataclass(frozen=True)
class SparkBin:
    label: str  # "2026-11-28 14:00", or "2026-11-28 14:00–18:00" for several hours; escaped
    x: str  # where its bar starts, in the sparkline's units


def spark_bins(bins) -> list[SparkBin]:
    """The labels and places of a page's failure sparklines' bins (``HourBin``s): they
    all cover the same hours, so these are made once per page, not once per group."""
    step = SPARK_WIDTH_FAILURES / max(len(bins), 1)
    spark = []
    for index, hour_bin in enumerate(bins):
        start = timezone.localtime(hour_bin.start)
        label = start.strftime("%Y-%m-%d %H:00")
        if hour_bin.hours > 1:
            end = timezone.localtime(hour_bin.start + dt.timedelta(hours=hour_bin.hours))
            label += end.strftime("–%H:00")
        spark.append(SparkBin(escape(label), f"{index * step:.2f}"))
    return spark


@register.simple_tag
def failure_sparkline(counts: list[int], bins: list[SparkBin]) -> str:
    """Bars of failures per bin of hours (``counts``, one per bin), drawn as one path;
    over each bin a transparent slot says its time and count on hover and keyboard focus.
    A page draws up to MAX_GROUPS of them: the bins and the titles' words are made once."""
    width, height = SPARK_WIDTH_FAILURES, SPARK_HEIGHT_FAILURES
    peak = max(counts, default=0) or 1
    bar_width = f"{max(width / max(len(bins), 1) * 0.8, 0.5):.2f}"
    language = get_language()
    bars, slots = [], []
    for spark_bin, n in zip(bins, counts, strict=True):
        if n:
            top = height - max(n / peak * height, 1)
            bars.append(f"M{spark_bin.x} {top:.2f}h{bar_width}V{height}h-{bar_width}Z")
        before, after = _bin_title(n, language)
        slots.append(
            f'<rect class="spark-slot" tabindex="0" x="{spark_bin.x}" width="{bar_width}" '
            f'height="{height}"><title>{before}{spark_bin.label}{after}</title></rect>'
        )
    path = f'<path class="chart-bar" d="{"".join(bars)}"/>' if bars else ""
    inner = mark_safe(path + "".join(slots))  # numbers, and titles escaped
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
def _bin_title(n: int, language: str | None) -> tuple[str, str]:
    """A bin's title with ``n`` failures in ``language`` (the active one: the cache key),
    escaped, split where its time goes: ``("", ": 1,234 failures")`` in English."""
    text = ngettext("%(hour)s: %(n)s failure", "%(hour)s: %(n)s failures", n) % {
        "hour": "\x00",
        "n": intcomma(n),
    }
    before, _, after = str(escape(text)).partition("\x00")
    return before, after
