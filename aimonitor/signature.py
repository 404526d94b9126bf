"""The error signature of a call (SPEC.md §8), in SQL and in Python, defined once here.

Its ``error_message`` (NULL → empty), every maximal run of ASCII digits replaced by
``#``, every run of whitespace collapsed to one space, trimmed, cut to its first 200
characters: calls that differ only in ids, counts or numbers share a signature.
The failures page groups by the SQL form; the Python form names a group's text in
links. ``tests/test_signature.py`` checks that both agree on awkward texts.
"""

from __future__ import annotations

import re

from django.db.models import CharField, Func

LENGTH = 200
# Explicit classes, so PostgreSQL's and Python's regular expressions mean the same.
DIGITS = "[0-9]+"
WHITESPACE = "[ \t\n\r\f\v]+"

_digits = re.compile(DIGITS)
_whitespace = re.compile(WHITESPACE)


def error_signature(message: str | None) -> str:
    """The signature of one error message."""
    text = _whitespace.sub(" ", _digits.sub("#", message or ""))
    return text.strip(" ")[:LENGTH]


def signature_sql(column: str) -> str:
    """The same signature as an SQL expression over ``column``."""
    return (
        f"left(btrim(regexp_replace(regexp_replace(coalesce({column}, ''), "
        f"'{DIGITS}', '#', 'g'), E'{WHITESPACE.encode('unicode_escape').decode()}', ' ', 'g'), ' '), "
        f"{LENGTH})"
    )


class ErrorSignature(Func):
    """``ErrorSignature("error_message")``: the signature as an ORM expression."""

    output_field = CharField()

    def __init__(self, expression="error_message", **extra):
        super().__init__(expression, **extra)

    def as_sql(self, compiler, connection, **extra_context):
        column, params = compiler.compile(self.source_expressions[0])
        return signature_sql(column), params
