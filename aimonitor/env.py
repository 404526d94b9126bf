"""Read settings from the environment, refusing malformed values at start-up.

Modelled on healthchecks' ``envbool`` / ``envint``: a typo in a deployment's
environment must stop the process with a message naming the variable, not
silently fall back to a default.
"""

from __future__ import annotations

import os
import re

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def envstr(name: str, default: str | None = None) -> str | None:
    value = _raw(name)
    return default if value is None else value


def envbool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean; use 1/0, true/false, yes/no or on/off."
    )


def envint(name: str, default: int, *, minimum: int = 0) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a whole number.") from None
    if number < minimum:
        raise ImproperlyConfigured(f"{name}={value!r} must be at least {minimum}.")
    return number


def envdecimal(name: str) -> str | None:
    """A non-negative decimal kept as text (Decimal-ready), or None when unset."""
    from decimal import Decimal, InvalidOperation

    value = _raw(name)
    if value is None:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ImproperlyConfigured(f"{name}={value!r} is not a decimal number.") from None
    if not number.is_finite() or number < 0:
        raise ImproperlyConfigured(f"{name}={value!r} must be a non-negative number.")
    return value


def envidentifier(name: str, default: str) -> str:
    """A PostgreSQL identifier (schema name): lower-case letters, digits, underscore."""
    value = envstr(name, default)
    if not _IDENTIFIER.match(value):
        raise ImproperlyConfigured(f"{name}={value!r} is not a plain lower-case SQL identifier.")
    return value


def envtimezone(name: str, default: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    value = envstr(name, default)
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ImproperlyConfigured(f"{name}={value!r} is not a known time zone.") from None
    return value


def envlist(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envheader(name: str) -> str | None:
    """An HTTP request header, as its ``request.META`` key: ``X-Forwarded-For`` and
    ``HTTP_X_FORWARDED_FOR`` both give ``HTTP_X_FORWARDED_FOR``; anything else that is
    not a header name stops start-up naming the setting."""
    value = envstr(name)
    if value is None:
        return None
    import re

    header = value.strip()
    if re.fullmatch(r"HTTP_[A-Z0-9_]+", header):
        return header
    if re.fullmatch(r"[A-Za-z0-9]+(-[A-Za-z0-9]+)*", header):
        return "HTTP_" + header.upper().replace("-", "_")
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a header name (write it as X-Forwarded-For or "
        "HTTP_X_FORWARDED_FOR)."
    )
