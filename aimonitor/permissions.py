"""What a person may do: the permission names, and ``require(user, perm)``.

Invariant: this is the one place that names a write permission and the one check
of it. Every domain operation starts with ``require(user, PERM)`` (so a page, an
HTMX fragment and a Django admin action refuse alike, with ``NotPermitted``: 403
and the sentence below), ``aimonitor.roles`` gives each role its permissions from
these names, and pages ask ``allowed(user, PERM)`` to show or hide a button.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from aimonitor.operations.refusals import NotPermitted

TRIAGE_ALERT = "aimonitor.triage_alert"
RETRY_JOB = "aimonitor.retry_job"
INVALIDATE_CACHE = "aimonitor.invalidate_cache"
RUN_BATCH = "aimonitor.run_batch"
VIEW_PROMPT = "aimonitor.view_prompt"

# What an operator may do beyond reading; admins may do these and more (roles.py).
OPERATOR_PERMISSIONS = (TRIAGE_ALERT, RETRY_JOB, INVALIDATE_CACHE)
ADMIN_PERMISSIONS = (RUN_BATCH, VIEW_PROMPT)

REFUSAL_MESSAGES = {
    TRIAGE_ALERT: _("You may not acknowledge, ignore or reopen alerts."),
    RETRY_JOB: _("You may not retry jobs."),
    INVALIDATE_CACHE: _("You may not invalidate cached results."),
    RUN_BATCH: _("You may not launch batch runs."),
}


def allowed(user, perm: str) -> bool:
    """True when ``user`` holds ``perm`` (through their role, or as a superuser)."""
    return bool(user.has_perm(perm))


def require(user, perm: str) -> None:
    """Refuse (``NotPermitted``, 403) unless ``user`` holds ``perm``."""
    if not allowed(user, perm):
        raise NotPermitted(
            REFUSAL_MESSAGES.get(perm, _("Your role or your sites do not allow this."))
        )
