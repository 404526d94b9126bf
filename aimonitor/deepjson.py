"""JSON values of any depth, read and written without Python's recursion limit.

PostgreSQL's ``jsonb`` nests as deep as its stack allows; Python's ``json`` recurses
once per level and stops at about a thousand (RecursionError), and pretty-printing
stops sooner. One job payload or cache result nested that deep made its page, the
admin and every retry path that read it answer 500.

So ``payload`` and ``result_json`` are ``DeepJSONField``\\ s: a value nested deeper
than ``MAX_DEPTH`` (found by one pass over the text, without recursion) is not parsed
but kept as ``StoredJSON`` — a ``str`` of the stored text — which pages show as it is
(with a note) and which is written back verbatim: a retry copies such a payload
exactly. Shallower values are the usual dicts and lists.
"""

from __future__ import annotations

import json
import re

from django.db import models

# Deeper than this is kept as text: far below the recursion limit, so parsing,
# pretty-printing and writing the parsed value back cannot exhaust the stack.
MAX_DEPTH = 100


class StoredJSON(str):
    """A JSON document too deeply nested to parse, as PostgreSQL stores it."""

    __slots__ = ()


# A JSON string (skipped whole, escapes included) or one bracket.
_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in the JSON ``text`` (no recursion).

    Only strings and brackets are visited (found by the regular expression, in C).
    """
    deepest = level = 0
    for token in _TOKENS.finditer(text):
        char = token.group()
        if char in "[{":
            level += 1
            deepest = max(deepest, level)
        elif char in "]}":
            level -= 1
    return deepest


def too_deep(text: str) -> bool:
    # Counting brackets runs in C: only a text with many of them is scanned.
    return text.count("[") + text.count("{") > MAX_DEPTH and depth(text) > MAX_DEPTH


class DeepJSONDecoder(json.JSONDecoder):
    def decode(self, s, *args, **kwargs):
        if too_deep(s):
            return StoredJSON(s)
        return super().decode(s, *args, **kwargs)


class DeepJSONEncoder(json.JSONEncoder):
    def encode(self, o):
        if isinstance(o, StoredJSON):
            return str.__str__(o)
        return super().encode(o)


class DeepJSONField(models.JSONField):
    """A ``jsonb`` column whose values may be nested deeper than Python recurses."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("encoder", DeepJSONEncoder)
        kwargs.setdefault("decoder", DeepJSONDecoder)
        super().__init__(*args, **kwargs)


def pretty(value) -> tuple[str, bool]:
    """``value`` laid out for reading, and False when it is too deep (then as stored)."""
    if isinstance(value, StoredJSON):
        return str.__str__(value), False
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True), True
