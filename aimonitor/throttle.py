"""The failed-login throttle: too many wrong passwords and the login form says "wait".

After ``LOGIN_FAILURE_LIMIT`` failed sign-ins for one username, or from one client
address, within ``LOGIN_FAILURE_WINDOW_SECONDS``, the login form refuses further
attempts for that username or address (status 429, even with the right password)
until the oldest of those failures leaves the window. A successful sign-in clears
the count of its username and address.

Failures are rows in the database (``LoginFailure``), so every server process
counts the same attempts. The login forms themselves (the console's and the admin's)
check and record them around the password check, rather than a receiver of the
``user_login_failed`` signal that a request could get past. Attempts for one
username are serialised by a PostgreSQL advisory lock held while the password is
checked, so a burst of parallel guesses gets no more than the limit.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import ngettext

from aimonitor.models import LoginFailure

THROTTLED = "throttled"


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the proxy's header when one is configured."""
    address = request.META.get("REMOTE_ADDR", "")
    header = settings.CLIENT_IP_HEADER
    if header:
        forwarded = request.headers.get(header, "")
        # The last entry is the one the trusted proxy itself appended.
        address = forwarded.split(",")[-1].strip() or address
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def username_key(username: str) -> str:
    """Usernames are counted case-folded, so "Alice" and "alice" share one count."""
    return username.strip().casefold()[:150]


def window_start() -> dt.datetime:
    return timezone.now() - dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)


def locked_until(username: str, ip: str | None) -> dt.datetime | None:
    """When the username or address may try again, or None when it may now."""
    since = window_start()
    limit = settings.LOGIN_FAILURE_LIMIT
    window = dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    unlocks = []
    conditions = [Q(username=username)] + ([Q(client_ip=ip)] if ip else [])
    for condition in conditions:
        # The limit-th newest failure in the window: the lock lifts when it leaves.
        newest = (
            LoginFailure.objects.filter(condition, created_at__gte=since)
            .order_by("-created_at")
            .values_list("created_at", flat=True)[:limit]
        )
        newest = list(newest)
        if len(newest) >= limit:
            unlocks.append(newest[-1] + window)
    return max(unlocks, default=None)


def record_failure(username: str, ip: str | None) -> None:
    """Count one failed sign-in, and forget failures that have left the window."""
    LoginFailure.objects.filter(created_at__lt=window_start()).delete()
    LoginFailure.objects.create(username=username, client_ip=ip)


def clear_failures(username: str, ip: str | None) -> None:
    """A successful sign-in: its username and address start afresh."""
    condition = Q(username=username) | (Q(client_ip=ip) if ip else Q(pk__in=[]))
    LoginFailure.objects.filter(condition).delete()


def lock_username(username: str) -> None:
    """Serialise sign-ins for one username until the transaction ends (every process)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"aimonitor.login:{username}"]
        )


def wait_message(until: dt.datetime) -> str:
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    return ngettext(
        "Too many failed sign-in attempts. Try again in %(minutes)s minute.",
        "Too many failed sign-in attempts. Try again in %(minutes)s minutes.",
        minutes,
    ) % {"minutes": minutes}


class LoginThrottleMixin:
    """For an AuthenticationForm: count failures, refuse while over the limit."""

    locked_until: dt.datetime | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()  # no password is checked, so nothing is counted
        key, ip = username_key(username), client_ip(self.request)
        failure = None
        with transaction.atomic():
            lock_username(key)
            self.locked_until = locked_until(key, ip)
            if self.locked_until is None:
                try:
                    cleaned = super().clean()
                except ValidationError as error:
                    failure = error
                    # Only a wrong password counts (not, say, a right one refused by
                    # the admin for a non-staff user); committed before the raise.
                    if self.user_cache is None:
                        record_failure(key, ip)
                else:
                    clear_failures(key, ip)
                    return cleaned
        if failure is not None:
            raise failure
        raise ValidationError(wait_message(self.locked_until), code=THROTTLED)

    @property
    def throttled(self) -> bool:
        return self.locked_until is not None and self.has_error(NON_FIELD_ERRORS, THROTTLED)


class ThrottledAuthenticationForm(LoginThrottleMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(LoginThrottleMixin, AdminAuthenticationForm):
    pass


def refuse_throttled(response, form):
    """A refusal by the throttle is a 429 with Retry-After."""
    if form is not None and form.is_bound and form.throttled:
        response.status_code = 429
        seconds = (form.locked_until - timezone.now()).total_seconds()
        response["Retry-After"] = str(max(1, math.ceil(seconds)))
    return response


class ThrottledLoginView(auth_views.LoginView):
    """Django's login view with the throttled form."""

    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        return refuse_throttled(super().form_invalid(form), form)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        form = context.get("form")
        if form is not None and form.is_bound and form.throttled:
            context["throttle_message"] = form.non_field_errors()[0]
        return context


def admin_login(request, extra_context=None):
    """The Django admin's login page with the same throttle (``admin.site.login_form``)."""
    response = admin.site.login(request, extra_context)
    context = getattr(response, "context_data", None) or {}
    return refuse_throttled(response, context.get("form"))
