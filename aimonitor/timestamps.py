"""Timestamps PostgreSQL holds and Python's ``datetime`` cannot: read them as text.

``timestamptz`` reaches from 4713 BC to 294276 AD and has ``infinity`` and
``-infinity`` (a natural "never expires"); ``datetime`` stops at years 1 and 9999.
psycopg2 turns ``infinity`` into ``datetime.max`` (which then overflows when moved to
local time) and refuses the rest with ValueError, so one such row made every page
that read it answer 500. Every ``timestamptz`` is therefore read by one typecaster
(registered in ``AIMonitorConfig.ready``): a value Python can hold and show in any
time zone is the usual aware ``datetime``; any other is an ``OutOfRangeTime``.

``OutOfRangeTime`` is a ``str`` holding PostgreSQL's own text (``infinity``,
``10000-01-01 00:00:00+00``), so JSON and CSV carry it as it is; in a page it reads
as a translated label ("never", "out of range: …"), through ``{{ value }}``,
``naturaltime``, the admin, and the ``date``/``time`` filters of
``aimonitor.templatetags.moments`` (installed as builtins). Code that does arithmetic
with a time asks ``is_moment(value)`` first.
"""

from __future__ import annotations

import datetime as dt

import psycopg2.extensions
from django.utils.translation import gettext

TIMESTAMPTZ_OID = 1184
# Within a day of datetime's ends, a value may not survive a move to another zone.
_SAFE_FROM = dt.datetime(1, 1, 2, tzinfo=dt.UTC)
_SAFE_UNTIL = dt.datetime(9999, 12, 30, tzinfo=dt.UTC)


class OutOfRangeTime(str):
    """A ``timestamptz`` outside what ``datetime`` holds, as PostgreSQL wrote it."""

    __slots__ = ()

    @property
    def raw(self) -> str:
        """PostgreSQL's text (for CSV, JSON, ``datetime`` attributes)."""
        return str.__str__(self)

    def label(self) -> str:
        """What a person reads: "never", "always" or "out of range: <the value>"."""
        if self.raw == "infinity":
            return gettext("never")
        if self.raw == "-infinity":
            return gettext("always")
        return gettext("out of range: %(value)s") % {"value": self.raw}

    def __str__(self) -> str:
        return self.label()


def is_moment(value) -> bool:
    """True for a ``datetime`` one can compute with (not None, not out of range)."""
    return isinstance(value, dt.datetime)


def out_of_range(moment: dt.datetime) -> bool:
    """True when an aware ``moment`` cannot be moved to every time zone."""
    return not (_SAFE_FROM <= moment < _SAFE_UNTIL)


def cast_timestamptz(value: str | None, cursor):
    """psycopg2's typecaster for ``timestamptz``, out-of-range values as text."""
    if value is None:
        return None
    if value in ("infinity", "-infinity"):
        return OutOfRangeTime(value)
    try:
        moment = psycopg2.extensions.PYDATETIMETZ(value, cursor)
    except (ValueError, OverflowError):
        return OutOfRangeTime(value)
    return OutOfRangeTime(value) if moment.tzinfo and out_of_range(moment) else moment


PSYCOPG2_TIMESTAMPTZ = psycopg2.extensions.new_type(
    (TIMESTAMPTZ_OID,), "AIMONITOR_TIMESTAMPTZ", cast_timestamptz
)


def psycopg3_loader(django_loader):
    """Django's ``timestamptz`` loader of a psycopg 3 connection, out-of-range as text."""
    import psycopg

    class TimestamptzLoader(django_loader):
        def load(self, data):
            text = bytes(data).decode()
            try:
                moment = super().load(data)
            except (psycopg.DataError, ValueError, OverflowError):
                return OutOfRangeTime(text)
            return OutOfRangeTime(text) if moment.tzinfo and out_of_range(moment) else moment

    return TimestamptzLoader


def adapt_connection(sender, connection, **kwargs) -> None:
    """On each new PostgreSQL connection, read ``timestamptz`` through the casters above.

    Django uses psycopg 3 when it is installed, psycopg2 otherwise: both are covered.
    """
    if connection.vendor != "postgresql":
        return
    raw = connection.connection
    if raw.__class__.__module__.startswith("psycopg2"):
        psycopg2.extensions.register_type(PSYCOPG2_TIMESTAMPTZ, raw)
        return
    from psycopg.pq import Format

    current = raw.adapters.get_loader(TIMESTAMPTZ_OID, Format.TEXT)
    if not getattr(current, "reads_out_of_range", False):
        loader = psycopg3_loader(current)
        loader.reads_out_of_range = True
        raw.adapters.register_loader(TIMESTAMPTZ_OID, loader)


def register() -> None:
    """Read every ``timestamptz`` of every new connection through ``adapt_connection``."""
    from django.db.backends.signals import connection_created

    connection_created.connect(adapt_connection, dispatch_uid="aimonitor.timestamps")
