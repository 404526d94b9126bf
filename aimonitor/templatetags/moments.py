"""The ``date`` and ``time`` filters, also for times ``datetime`` cannot hold.

Installed as template builtins (settings.TEMPLATES), so every template, the admin's
included, shows an ``OutOfRangeTime`` (``aimonitor/timestamps.py``) as its label
("never") rather than an empty cell, and ``|date:"c"`` (machine-readable attributes)
as PostgreSQL's text. Any other value goes to Django's own filter.
"""

from __future__ import annotations

from django import template
from django.template import defaultfilters

from aimonitor.timestamps import OutOfRangeTime

register = template.Library()


@register.filter(expects_localtime=True, is_safe=False)
def date(value, arg=None):
    if isinstance(value, OutOfRangeTime):
        return value.raw if arg == "c" else value.label()
    return defaultfilters.date(value, arg)


@register.filter(expects_localtime=True, is_safe=False)
def time(value, arg=None):
    if isinstance(value, OutOfRangeTime):
        return value.label()
    return defaultfilters.time(value, arg)
