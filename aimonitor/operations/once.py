"""Exactly-once writes, guarded by a unique key in the database."""

from __future__ import annotations

from django.db import IntegrityError, transaction

from aimonitor.models import OnceToken


def claim_once(key: str, action: str, actor, result: dict | None = None) -> OnceToken | None:
    """Claim ``key`` inside the caller's transaction; None if it was already claimed.

    Call it inside ``transaction.atomic()`` *before* the write it guards. A second
    transaction claiming the same key waits on the unique index until the first
    commits, then gets None — so two concurrent submits produce one write. If the
    first rolls back, the key is free again.
    """
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives
            return OnceToken.objects.create(
                key=key,
                action=action,
                actor=actor if getattr(actor, "pk", None) else None,
                result=result or {},
            )
    except IntegrityError:
        return None


def claimed(key: str) -> OnceToken | None:
    """The token already claimed under ``key``, if any."""
    return OnceToken.objects.filter(key=key).first()
