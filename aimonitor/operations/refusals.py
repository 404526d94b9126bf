"""Why a write did nothing: the one ``Refused`` family (Zulip's ``JsonableError``).

Invariant: a refusal means nothing was written. Every domain operation refuses by
raising one of these — never by returning a status, a redirect or a page — and
carries a message a person can act on and the HTTP status it is answered with.
``aimonitor.responses`` answers every one the same way: the full page, the HTMX
fragment or JSON, with ``status``.

| class         | status | meaning                                               |
| ------------- | ------ | ----------------------------------------------------- |
| NotPermitted  | 403    | the role or the sites do not allow it                 |
| NotFound      | 404    | no such row among the user's sites                    |
| Invalid       | 400    | the request itself is wrong (or has expired)          |
| TooMany       | 400    | more rows than one request may change (``BULK_LIMIT``) |
| Conflict      | 409    | the rows' state forbids it now (unfinished, used ...) |
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied


class Refused(Exception):
    """A write that did nothing: ``message`` says why, ``status`` is HTTP's."""

    status = 400

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.message = str(message)
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return self.message


class NotPermitted(Refused, PermissionDenied):
    """403. Also a ``PermissionDenied``, so Django and the admin treat it as one."""

    status = 403


class NotFound(Refused):
    """404: the row is not there, or not among the user's sites (the same answer)."""

    status = 404


class Invalid(Refused):
    """400: the request is wrong; asking again the same way will not work."""

    status = 400


class TooMany(Invalid):
    """400: more rows than one request may change; nothing was changed."""


class Conflict(Refused):
    """409: the rows' state forbids the write now (e.g. a job still running)."""

    status = 409


REFUSALS = (NotPermitted, NotFound, Invalid, TooMany, Conflict)
