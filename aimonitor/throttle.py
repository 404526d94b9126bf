"""The failed-login throttle: django-axes, configured for the console.

django-axes counts failed sign-ins in the database (``axes.models.AccessAttempt``), so
every server process counts the same attempts. How the console uses it:

- **Username and address together** (``AXES_LOCKOUT_PARAMETERS``): after
  ``AIMONITOR_LOGIN_FAILURE_LIMIT`` failures for one username from one client address,
  that username is refused from that address (429, even with the right password) for
  ``AIMONITOR_LOGIN_FAILURE_WINDOW_SECONDS`` after the last failure. A stranger's
  failures from elsewhere do not lock the real user out of their own address.
- **A per-username ceiling** (``AIMONITOR_LOGIN_FAILURE_CEILING``, the small addition
  axes has no setting for: ``ConsoleAxesHandler``): that many failures for one username
  from all addresses together lock the username everywhere, against guessing spread
  over many addresses.
- **A successful sign-in clears only its own username's failures** from its address
  (``AXES_RESET_ON_SUCCESS``): signing in as yourself does not forgive the failures
  against someone else's username.
- **One normalisation** (``username_key``: NFKC, surrounding spaces, case) for the lock
  and for the login (``UsernameBackend``): ``ADMIN``, `` admin `` and ``ａｄｍｉｎ`` are
  one username for both.
- **The client address** is ``client_ip``: REMOTE_ADDR, or the configured proxy header's
  last entry when it is an IP address (``AIMONITOR_CLIENT_IP_HEADER``).

The login forms (the console's and the admin's) check the lock before the password, so a
refused attempt is not counted again, and serialise the attempts for one username with a
PostgreSQL advisory lock held while the password is checked, so a burst of parallel
guesses gets no more than the limit (axes alone checks and records in two steps).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import unicodedata

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import connection, transaction
from django.db.models import Max, Sum
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import ngettext

THROTTLED = "throttled"


# --- Who is trying: the address and the username --------------------------------------


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the proxy's header when one is configured.

    Only the header's last entry counts (the one the trusted proxy itself appended);
    a value that is not an IP address is no address at all (None), never a key an
    attacker can choose freely.
    """
    address = request.META.get("REMOTE_ADDR", "")
    meta_key = settings.CLIENT_IP_META_KEY
    if meta_key:
        forwarded = request.META.get(meta_key, "")
        address = forwarded.split(",")[-1].strip() or address
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def username_key(username: str) -> str:
    """The one spelling of a username for the lock and the login: NFKC (full-width
    letters are ASCII), no surrounding spaces, lower case."""
    return unicodedata.normalize("NFKC", username).strip().lower()[:150]


def axes_username(request, credentials) -> str | None:
    """``AXES_USERNAME_CALLABLE``: axes counts and clears the normalised username."""
    field = get_user_model().USERNAME_FIELD
    username = (credentials or {}).get(field) if credentials else request.POST.get(field)
    return username_key(username) if isinstance(username, str) else None


def find_user(username: str):
    """The user a typed username means: the exact name, else the one user whose name
    has the same ``username_key`` (None when there is none, or more than one)."""
    manager = get_user_model()._default_manager
    typed = unicodedata.normalize("NFKC", username).strip()
    exact = manager.filter(username=typed).first()
    if exact is not None:
        return exact
    key = username_key(typed)
    matches = [
        user
        for user in manager.filter(username__iexact=typed)[:3]
        if username_key(user.username) == key
    ]
    return matches[0] if len(matches) == 1 else None


class UsernameBackend(ModelBackend):
    """Django's ModelBackend, matching usernames as the throttle counts them."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if username is None or password is None:
            return None
        user = find_user(username)
        if user is None:
            get_user_model()().set_password(password)  # the same time as a wrong password
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


# --- The lock --------------------------------------------------------------------------


class ConsoleAxesHandler(AxesDatabaseHandler):
    """Axes' database handler plus the per-username ceiling over every address."""

    def get_failures(self, request, credentials=None) -> int:
        failures = super().get_failures(request, credentials)
        username = get_client_username(request, credentials)
        if username and failures < get_failure_limit(request, credentials):
            everywhere = AccessAttempt.objects.filter(
                username=username, attempt_time__gte=get_cool_off_threshold(request)
            ).aggregate(total=Sum("failures_since_start"))["total"]
            if (everywhere or 0) >= settings.LOGIN_FAILURE_CEILING:
                failures = get_failure_limit(request, credentials)
        return failures


def lockout_response(request, response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: the login view has already answered (the form with the
    wrong-password error, or the 429 with the wait message); keep that answer."""
    if response is None:
        return HttpResponse(status=429)
    return response


def locked_until(username: str) -> dt.datetime:
    """When the newest failure counted against ``username`` leaves the window."""
    window = dt.timedelta(seconds=settings.LOGIN_FAILURE_WINDOW_SECONDS)
    newest = AccessAttempt.objects.filter(username=username).aggregate(at=Max("attempt_time"))
    return (newest["at"] or timezone.now()) + window


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
    """For an AuthenticationForm: refuse while locked, before the password is checked."""

    locked_until: dt.datetime | None = None

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if not username or not password:
            return super().clean()  # no password is checked, so nothing is counted
        key = username_key(username)
        credentials = {get_user_model().USERNAME_FIELD: key}
        with transaction.atomic():
            lock_username(key)
            if AxesProxyHandler.is_allowed(self.request, credentials):
                # A wrong password is counted by axes (the user_login_failed signal)
                # inside this transaction; a right one refused by the admin for a
                # non-staff user is not a failed password and is not counted.
                try:
                    return super().clean()
                except ValidationError as error:
                    failure = error
            else:
                failure = None
                self.locked_until = locked_until(key)
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
