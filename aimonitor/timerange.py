"""The one time range of every page that shows calls (SPEC.md §8).

A range is either a preset (``range`` = 15m, 1h, 6h, 24h, 7d, 30d: the window
[now − span, now)) or a custom window (``since`` and optional ``until``, local
date-times ``YYYY-MM-DDTHH:MM`` in AIMONITOR_TIME_ZONE, ``until`` exclusive and
defaulting to now). Both forms at once, a malformed value, ``since`` not before
``until`` or a span over 31 days is a form error on the field that is wrong, so
every page answers 400 naming it. ``TimeRangeForm`` is mixed into the pages'
filter forms; ``TimeRange`` is the checked window they narrow ``created_at`` by.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

PRESETS = {
    "15m": dt.timedelta(minutes=15),
    "1h": dt.timedelta(hours=1),
    "6h": dt.timedelta(hours=6),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
MAX_SPAN = dt.timedelta(days=31)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
# The parameters that choose a range; links between pages carry them.
PARAMS = ("range", "since", "until")


@dataclass(frozen=True)
class TimeRange:
    """The window [since, until) as aware datetimes, and how it was chosen."""

    since: dt.datetime
    until: dt.datetime
    preset: str | None = None

    @classmethod
    def last(cls, preset: str, now: dt.datetime | None = None) -> TimeRange:
        now = now or timezone.now()
        return cls(now - PRESETS[preset], now, preset)

    def params(self) -> dict[str, str]:
        """The query parameters that choose this range again."""
        if self.preset:
            return {"range": self.preset}
        return {"since": local_text(self.since), "until": local_text(self.until)}

    def narrow(self, queryset, field: str = "created_at"):
        """``queryset`` narrowed to calls created in the window (index-friendly bounds)."""
        return queryset.filter(**{f"{field}__gte": self.since, f"{field}__lt": self.until})


def local_text(moment: dt.datetime) -> str:
    """``moment`` as the ``since``/``until`` text of the console's zone."""
    return timezone.localtime(moment).strftime(LOCAL_FORMAT)


def parse_local(text: str) -> dt.datetime | None:
    """``YYYY-MM-DDTHH:MM`` in the console's zone as an aware datetime, or None if malformed."""
    try:
        naive = dt.datetime.strptime(text.strip(), LOCAL_FORMAT)
    except ValueError:
        return None
    if not dt.datetime(2000, 1, 1) <= naive <= dt.datetime(2100, 1, 1):
        return None
    return timezone.make_aware(naive, timezone.get_default_timezone())


class LocalDateTimeField(forms.Field):
    """A local date-time ``YYYY-MM-DDTHH:MM`` (the value of ``<input type=datetime-local>``)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"})
    default_error_messages = {
        "invalid": _("Enter a date and time as YYYY-MM-DDTHH:MM (between 2000 and 2100).")
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def to_python(self, value):
        text = str(value or "").strip()
        if not text:
            return None
        moment = parse_local(text) if len(text) <= 32 else None
        if moment is None:
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")
        return moment


class TimeRangeForm(forms.Form):
    """``range`` or ``since``/``until``; ``cleaned_data["time_range"]`` is the window or None.

    ``default_range`` (a preset, or None for "no time filter") applies when neither
    form is given. The fields render as hidden inputs: the shared control
    (``aimonitor/time_range.html``) is where a person chooses them.
    """

    range = forms.ChoiceField(
        label=_("Range"),
        required=False,
        choices=[("", "")] + [(name, name) for name in PRESETS],
        widget=forms.HiddenInput,
        error_messages={"invalid_choice": _("Choose one of 15m, 1h, 6h, 24h, 7d or 30d.")},
    )
    since = LocalDateTimeField(label=_("Since"), widget=forms.HiddenInput)
    until = LocalDateTimeField(label=_("Until"), widget=forms.HiddenInput)

    default_range: str | None = None

    def clean(self):
        data = super().clean()
        data["time_range"] = None
        if any(name in self.errors for name in PARAMS):
            return data
        preset, since, until = data.get("range"), data.get("since"), data.get("until")
        if preset and (since or until):
            self.add_error("range", _("Choose either a range or since/until, not both."))
        elif preset:
            data["time_range"] = TimeRange.last(preset)
        elif until and not since:
            self.add_error("since", _("Give “since” with “until”."))
        elif since:
            until = until or timezone.now()
            if since >= until:
                self.add_error("since", _("“Since” must be before “until”."))
            elif until - since > MAX_SPAN:
                self.add_error("until", _("A custom range spans at most 31 days."))
            else:
                data["time_range"] = TimeRange(since, until)
        elif self.default_range:
            data["time_range"] = TimeRange.last(self.default_range)
        return data

    def filter(self, queryset):
        """The common filters, then the calls created in the range (when one is chosen)."""
        queryset = super().filter(queryset)
        return self.time_range.narrow(queryset) if self.time_range else queryset

    @property
    def time_range(self) -> TimeRange | None:
        return self.cleaned_data.get("time_range") if hasattr(self, "cleaned_data") else None

    def range_params(self) -> dict[str, str]:
        """The range parameters as given (valid or not), to carry to other pages."""
        return {name: self.data[name] for name in PARAMS if self.data.get(name)}
