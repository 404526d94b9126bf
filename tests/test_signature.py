"""The error signature (SPEC.md §8): the SQL and the Python form agree on awkward texts."""

from __future__ import annotations

import pytest
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from aimonitor.signature import error_signature, signature_sql

CASES = [
    (None, ""),
    ("", ""),
    ("Timeout after 3000 ms for member 12345", "Timeout after # ms for member #"),
    ("  a\t\tb \n\n c  ", "a b c"),
    ("x1y22z333", "x#y#z#"),
    ("١٢٣ arabic digits stay", "١٢٣ arabic digits stay"),  # not ASCII digits
    ("a\u00a0b", "a\u00a0b"),  # a no-break space is not collapsed (not ASCII whitespace)
    ("é" * 250, "é" * 200),
    (" " + "9" * 300, "#"),
]


def sql_signature(text):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {signature_sql('m')} FROM (SELECT %s::text AS m) t", [text])
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.parametrize("text, expected", CASES)
def test_both_forms_give_the_documented_signature(text, expected):
    assert error_signature(text) == expected
    assert sql_signature(text) == expected


@pytest.mark.django_db
@settings(max_examples=150, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("ab #\t\n\r\x0b\x0c0123456789é\u00a0-")), max_size=260)
)
def test_sql_and_python_agree(text):
    assert sql_signature(text) == error_signature(text)
