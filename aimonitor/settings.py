"""AI Monitor settings, read from the environment (SPEC.md §1)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from aimonitor.env import (
    envbool,
    envdecimal,
    envheader,
    envidentifier,
    envint,
    envlist,
    envstr,
    envtimezone,
)
from aimonitor.postgresql.base import bind_psycopg2

BASE_DIR = Path(__file__).resolve().parent.parent
# Django stays on psycopg2 beside procrastinate's psycopg 3 (aimonitor/postgresql/base.py).
bind_psycopg2()

DEBUG = envbool("DJANGO_DEBUG", False)
SECRET_KEY = envstr("DJANGO_SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY is required when DJANGO_DEBUG is off.")
    SECRET_KEY = "insecure-development-key-only-for-DJANGO_DEBUG"
ALLOWED_HOSTS = envlist("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",
    "django_htmx",
    "template_partials",
    "csp",
    "axes",
    "aimonitor",
    "dashboard",
    # Before alerts: its admin then unregisters procrastinate's job tables (alerts/admin.py).
    "procrastinate.contrib.django",
    "alerts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # With a replica: a person's reads go to the primary just after their write.
    "aimonitor.db_router.PrimaryAfterWriteMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the set_language cookie, else the browser's Accept-Language.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "aimonitor.middleware.RejectNulCharactersMiddleware",
    "aimonitor.middleware.DatabaseUnavailableMiddleware",
    # A refused write (operations/refusals.py) is answered the same way by every view.
    "aimonitor.responses.RefusalMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "aimonitor.urls"
WSGI_APPLICATION = "aimonitor.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "aimonitor.context_processors.console",
            ],
            # |date and |time that also show times datetime cannot hold ("never").
            "builtins": ["aimonitor.templatetags.moments"],
        },
    }
]

# --- Database --------------------------------------------------------------
# DATABASE_URL set: that server. Unset: the embedded PostgreSQL under .data/.
DATABASE_URL = envstr("DATABASE_URL")
if DATABASE_URL is None:
    from aimonitor.embedded_db import database_url

    DATABASE_URL = database_url()
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
# Django on psycopg2 although psycopg 3 (procrastinate's) is installed: aimonitor/postgresql.
DATABASES["default"]["ENGINE"] = "aimonitor.postgresql"
# Every statement is bounded, so one slow query cannot hold a worker (ms).
STATEMENT_TIMEOUT_MS = envint("AIMONITOR_STATEMENT_TIMEOUT_MS", 10_000)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})
# 0: none is sent, the server's (the role's) applies. PgBouncer refuses the `options`
# startup parameter: behind it, set 0 here and the timeout on the role (docs/SCALING.md).
STATEMENT_TIMEOUT_OPTIONS = (
    {"options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}"} if STATEMENT_TIMEOUT_MS else {}
)
DATABASES["default"]["OPTIONS"].update(STATEMENT_TIMEOUT_OPTIONS)
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", 5)
# Parallel test runs on one server each need their own test database.
if envstr("AIMONITOR_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": envstr("AIMONITOR_TEST_DB_NAME")}
# A streaming replica of that database (optional): the AI tables' and the summaries'
# reads go there (aimonitor/db_router.py), a person's own reads stick to the primary
# for AIMONITOR_REPLICA_STICKY_SECONDS after their write.
DATABASE_REPLICA_URL = envstr("DATABASE_REPLICA_URL")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = dj_database_url.parse(DATABASE_REPLICA_URL, conn_max_age=60)
    DATABASES["replica"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["replica"].setdefault("OPTIONS", {})
    DATABASES["replica"]["OPTIONS"].update(STATEMENT_TIMEOUT_OPTIONS)
    # A replica that does not answer costs one request this long every 30 s (db_router).
    DATABASES["replica"]["OPTIONS"].setdefault("connect_timeout", 2)
    # Tests read the replica through the test database's own connection.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
DATABASE_ROUTERS = ["aimonitor.db_router.ReplicaRouter"]
REPLICA_STICKY_SECONDS = envint("AIMONITOR_REPLICA_STICKY_SECONDS", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- AI Monitor ------------------------------------------------------------
TIME_ZONE = envtimezone("AIMONITOR_TIME_ZONE", "Asia/Shanghai")
AI_SCHEMA = envidentifier("AIMONITOR_AI_SCHEMA", "biz")
DAILY_TOKEN_LIMIT = envint("AIMONITOR_DAILY_TOKEN_LIMIT", 100_000)
MONTHLY_TOKEN_LIMIT = envint("AIMONITOR_MONTHLY_TOKEN_LIMIT", 2_000_000)
AVG_TOKENS_PER_CALL = envint("AIMONITOR_AVG_TOKENS_PER_CALL", 2000)
BATCH_TTL_SECONDS = envint("AIMONITOR_BATCH_TTL_SECONDS", 600, minimum=1)
# A job pending longer than this many minutes is "stuck" on the jobs page (SPEC.md §9).
STUCK_MINUTES = envint("AIMONITOR_STUCK_MINUTES", 15, minimum=1)
TOKEN_PRICE_PER_1K = envdecimal("AIMONITOR_TOKEN_PRICE_PER_1K")
CURRENCY = envstr("AIMONITOR_CURRENCY", "CNY")  # shown beside every cost

# --- Notifications and the worker (SPEC.md §10) ------------------------------
WORKER_INTERVAL_SECONDS = envint("AIMONITOR_WORKER_INTERVAL_SECONDS", 60, minimum=1)
# The pass is scheduled by cron (procrastinate's periodic tasks), so the interval must
# divide a minute (1-30 s) or an hour (whole minutes).
if not (
    60 % WORKER_INTERVAL_SECONDS == 0
    or (WORKER_INTERVAL_SECONDS % 60 == 0 and 3600 % WORKER_INTERVAL_SECONDS == 0)
):
    raise ImproperlyConfigured(
        f"AIMONITOR_WORKER_INTERVAL_SECONDS={WORKER_INTERVAL_SECONDS} must divide a minute "
        "(e.g. 10, 30) or an hour (e.g. 60, 300)."
    )
# A delivery not tried for this long is queued again (its worker died mid-attempt).
DELIVERY_STALE_SECONDS = envint("AIMONITOR_DELIVERY_STALE_SECONDS", 120, minimum=1)
# Where the console is reached from outside: the links in notifications start here.
BASE_URL = envstr("AIMONITOR_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
NOTIFY_LANGUAGE = envstr("AIMONITOR_NOTIFY_LANGUAGE", "zh-hans").lower()
if NOTIFY_LANGUAGE not in ("en", "zh-hans"):
    raise ImproperlyConfigured(
        f"AIMONITOR_NOTIFY_LANGUAGE={NOTIFY_LANGUAGE!r} is not a language; use en or zh-hans."
    )
# /metrics answers only with this bearer token; unset, it is not served at all (404).
METRICS_TOKEN = envstr("AIMONITOR_METRICS_TOKEN")
# Email: EMAIL_URL (smtp://user:pass@host:587/?tls=True&_default_from_email=...),
# read by dj-email-url; unset, debug prints mail to the console and production uses
# Django's SMTP defaults (localhost:25).
EMAIL_URL = envstr("EMAIL_URL")
if EMAIL_URL:
    import dj_email_url

    try:
        vars().update(dj_email_url.parse(EMAIL_URL))
    except Exception as error:  # noqa: BLE001 - any malformed URL stops start-up
        raise ImproperlyConfigured(f"EMAIL_URL is malformed: {error}") from None
elif DEBUG:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = envstr(
    "AIMONITOR_EMAIL_FROM", vars().get("DEFAULT_FROM_EMAIL", "aimonitor@localhost")
)
# procrastinate (the worker's task engine) discovers alerts/tasks.py and keeps its jobs
# in this database (its own tables, from its migrations).

# --- Auth, sessions, i18n ----------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"
# The login throttle is django-axes (aimonitor/throttle.py): after LOGIN_FAILURE_LIMIT
# failures for one username from one address, that pair is refused for the window after
# the last failure; LOGIN_FAILURE_CEILING failures for one username from every address
# together lock the username everywhere.
LOGIN_FAILURE_LIMIT = envint("AIMONITOR_LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW_SECONDS = envint("AIMONITOR_LOGIN_FAILURE_WINDOW_SECONDS", 900, minimum=1)
LOGIN_FAILURE_CEILING = envint(
    "AIMONITOR_LOGIN_FAILURE_CEILING", 10 * LOGIN_FAILURE_LIMIT, minimum=LOGIN_FAILURE_LIMIT
)
# Behind a reverse proxy every request comes from the proxy's address: name the header
# it sets (X-Forwarded-For, or its META spelling HTTP_X_FORWARDED_FOR) so the throttle
# counts the real client's address. Kept as the request.META key.
CLIENT_IP_META_KEY = envheader("AIMONITOR_CLIENT_IP_HEADER")
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked username first
    "aimonitor.throttle.UsernameBackend",
]
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=LOGIN_FAILURE_WINDOW_SECONDS)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_HANDLER = "aimonitor.throttle.ConsoleAxesHandler"
AXES_USERNAME_CALLABLE = "aimonitor.throttle.axes_username"
AXES_CLIENT_IP_CALLABLE = "aimonitor.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "aimonitor.throttle.lockout_response"
AXES_DISABLE_ACCESS_LOG = True  # failures are what the throttle needs; sign-ins are not kept
AXES_ENABLE_ADMIN = False  # unlock with manage.py axes_reset_username NAME
AXES_VERBOSE = False
SESSION_ENGINE = "django.contrib.sessions.backends.db"

LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
# The catalogue: locale/zh_Hans/LC_MESSAGES/django.po and its compiled .mo (both committed).
LOCALE_PATHS = [BASE_DIR / "locale"]
# Chinese number formats with "1,234,567" grouping instead of Django's ungrouped default.
FORMAT_MODULE_PATH = ["aimonitor.formats"]
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"

MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# --- Security ----------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Behind HTTPS in production (DJANGO_HTTPS=1, see README "Production"): redirect plain
# HTTP, send HSTS, trust the proxy's X-Forwarded-Proto. Off for make run and tests.
HTTPS = envbool("DJANGO_HTTPS", False)
SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = envint("DJANGO_HSTS_SECONDS", 31_536_000 if HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
if HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = envbool("DJANGO_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}

# Serve static files from the app folders too, so no collectstatic is needed to run.
WHITENOISE_USE_FINDERS = True
