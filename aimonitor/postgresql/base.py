"""Django's PostgreSQL backend, kept on psycopg2 while psycopg 3 is installed beside it.

procrastinate (the worker's task engine, ``alerts/tasks.py``) needs psycopg 3 for its
own connections, and Django 5.2 prefers psycopg 3 whenever it can import it
(``django/db/backends/postgresql/psycopg_any.py``, ``base.py``). The console's
connections stay on psycopg2 (its typecasters and adapters are registered there):
``bind_psycopg2()``, called by the settings before anything imports Django's backend,
hides ``psycopg`` while those modules are first imported, so they bind to psycopg2 for
the life of the process; procrastinate imports psycopg 3 normally afterwards.
"""

from __future__ import annotations

import sys


def bind_psycopg2() -> None:
    """Import Django's PostgreSQL backend modules with psycopg 3 out of sight."""
    hidden = sys.modules.get("psycopg", False)
    sys.modules["psycopg"] = None  # type: ignore[assignment]  # "import psycopg" fails
    try:
        from django.db.backends.postgresql import base, psycopg_any  # noqa: F401
    finally:
        if hidden is False:
            del sys.modules["psycopg"]
        else:
            sys.modules["psycopg"] = hidden
    if psycopg_any.is_psycopg3:
        raise ImportError("Django's PostgreSQL backend was imported on psycopg 3 before.")


bind_psycopg2()

from django.db.backends.postgresql.base import DatabaseWrapper  # noqa: E402, F401
