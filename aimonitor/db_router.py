"""Reads of the AI tables and their summaries on a replica (SPEC.md §11).

With ``DATABASE_REPLICA_URL`` set, the ``replica`` database alias exists and
``ReplicaRouter`` sends there the reads of the AI tables (RunLog, TriggerJob,
CacheEntry) and of the dashboard's summaries (the rollups). Everything else reads
the primary (``default``): sessions, auth, the console's own models. Every write,
and the summaries' refresh (raw SQL on ``connection``), goes to the primary.

Three exceptions keep what a person sees right:

- After a person's write their own reads stick to the primary for
  ``AIMONITOR_REPLICA_STICKY_SECONDS``: ``PrimaryAfterWriteMiddleware`` marks the
  request that wrote (a signed cookie) and every request while the mark is fresh.
- Reads inside a transaction on the primary (a domain operation reading what it is
  about to change) stay on the primary.
- A replica that does not answer is left alone for ``RETRY_SECONDS``: reads go to
  the primary, with one warning in the log, and pages never fail because of it.

Raw SQL over the AI tables takes its connection from ``reading(model)``.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

logger = logging.getLogger(__name__)

REPLICA = "replica"
# The models whose reads may be served by the replica (app label, model name).
REPLICA_MODELS = {
    ("aimonitor", "runlog"),
    ("aimonitor", "triggerjob"),
    ("aimonitor", "cacheentry"),
    ("aimonitor", "runrollup"),
    ("aimonitor", "runlatencyrollup"),
    ("aimonitor", "rollupstate"),
}
# After the replica failed to answer, how long reads go to the primary before trying it again.
RETRY_SECONDS = 30
STICKY_COOKIE = "aimonitor_primary"
STICKY_SALT = "aimonitor.db_router.sticky"

# True while the current request must read the primary (it wrote, or follows a write).
_sticky: ContextVar[bool] = ContextVar("replica_sticky", default=False)
# Per request: [] until the replica's connection was checked in it, then [True].
_checked: ContextVar[list | None] = ContextVar("replica_checked", default=None)
_down_until = 0.0


def replica_configured() -> bool:
    return REPLICA in connections.settings


def replica_usable() -> bool:
    """Whether reads may go to the replica now; False (and one warning) when it does not answer.

    Its connection is checked at the first read of each request (and at every read
    outside requests): a replica that went away since is noticed before a page's
    query fails on it.
    """
    global _down_until
    if time.monotonic() < _down_until:
        return False
    conn = connections[REPLICA]
    checked = _checked.get()
    try:
        if checked is None or not checked:
            if conn.connection is not None and not conn.is_usable():
                conn.close()
            if checked is not None:
                checked.append(True)
        conn.ensure_connection()
    except DatabaseError as error:
        _down_until = time.monotonic() + RETRY_SECONDS
        conn.close()
        logger.warning(
            "Replica unavailable, reading from the primary for %s s: %s",
            RETRY_SECONDS,
            str(error).strip(),
        )
        return False
    return True


def forget_failures() -> None:
    """Try the replica again at the next read (tests, after the replica is back)."""
    global _down_until
    _down_until = 0.0


def read_alias(model) -> str:
    """The database a read of ``model`` goes to now."""
    if (
        (model._meta.app_label, model._meta.model_name) not in REPLICA_MODELS
        or not replica_configured()
        or _sticky.get()
        or connections[DEFAULT_DB_ALIAS].in_atomic_block
        or not replica_usable()
    ):
        return DEFAULT_DB_ALIAS
    return REPLICA


def reading(model):
    """The connection for raw SQL that reads ``model`` (the router's choice)."""
    return connections[read_alias(model)]


class ReplicaRouter:
    """Reads of the AI tables and summaries to the replica; everything else to the primary."""

    def db_for_read(self, model, **hints):
        return read_alias(model)

    def db_for_write(self, model, **hints):
        return DEFAULT_DB_ALIAS

    def allow_relation(self, obj1, obj2, **hints):
        return True  # one database, seen through two servers

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == DEFAULT_DB_ALIAS


class PrimaryAfterWriteMiddleware:
    """A person's reads go to the primary while their write may not have reached the replica.

    A request with a non-safe method (a POST) reads the primary throughout, and if it
    was answered without an error (it may have written) its answer carries a signed
    cookie; requests that bring the cookie within AIMONITOR_REPLICA_STICKY_SECONDS
    read the primary too. Without a replica it does nothing.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not replica_configured():
            return self.get_response(request)
        seconds = settings.REPLICA_STICKY_SECONDS
        writes = request.method not in ("GET", "HEAD", "OPTIONS", "TRACE")
        recent = request.get_signed_cookie(
            STICKY_COOKIE, default=None, salt=STICKY_SALT, max_age=seconds
        )
        token, check = _sticky.set(writes or recent is not None), _checked.set([])
        try:
            response = self.get_response(request)
        finally:
            _sticky.reset(token)
            _checked.reset(check)
        if writes and response.status_code < 400 and seconds > 0:
            response.set_signed_cookie(
                STICKY_COOKIE,
                "1",
                salt=STICKY_SALT,
                max_age=seconds,
                secure=settings.SESSION_COOKIE_SECURE,
                httponly=True,
                samesite="Lax",
            )
        return response
