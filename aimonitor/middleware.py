from __future__ import annotations

import logging

from django.core.exceptions import BadRequest
from django.db import DatabaseError, OperationalError, ProgrammingError, connections
from django.http import HttpResponse
from django.template import loader
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

# PostgreSQL's error codes for a statement cancelled by statement_timeout, and for a
# column or table that is not there.
QUERY_CANCELED = "57014"
UNDEFINED_COLUMN, UNDEFINED_TABLE = "42703", "42P01"


def pgcode(exception: Exception) -> str | None:
    """The SQLSTATE of a database error (Django keeps the driver's error as the cause):
    ``pgcode`` under psycopg2, ``sqlstate`` under psycopg 3."""
    for error in (exception.__cause__, exception):
        code = getattr(error, "pgcode", None) or getattr(error, "sqlstate", None)
        if code:
            return code
    return None


class DatabaseUnavailableMiddleware:
    """Database faults become a clear 503 page instead of a stack trace.

    - PostgreSQL cannot be reached: "the database is not answering". Django reconnects
      on the next request (CONN_HEALTH_CHECKS), so pages recover by themselves.
    - A statement ran past AIMONITOR_STATEMENT_TIMEOUT_MS: "the query took too long".
    - The AI tables lack a column or a table the console reads: the page names every
      missing part (``aimonitor.ai_tables.missing_parts``), as ``create_ai_tables --check``.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, ProgrammingError) and pgcode(exception) in (
            UNDEFINED_COLUMN,
            UNDEFINED_TABLE,
        ):
            return self.schema_mismatch(request, exception)
        if not isinstance(exception, OperationalError):
            return None
        if pgcode(exception) == QUERY_CANCELED:
            logger.warning("Statement timeout on %s: %s", request.path, exception)
            return self.render("aimonitor/database_problem.html", {"timed_out": True})
        logger.warning("Database unavailable for %s: %s", request.path, exception)
        # Drop the broken connection so the next request opens a fresh one.
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        return self.render("503.html", {})  # the error itself is logged, never shown

    def schema_mismatch(self, request, exception):
        """Name what the AI tables lack; the check itself may fail, the page may not."""
        from aimonitor.ai_tables import missing_parts

        try:
            missing = missing_parts()
        except DatabaseError as error:  # e.g. the request's transaction is aborted
            logger.warning("Could not check the AI tables: %s", error)
            missing = []
        logger.error("The AI tables do not match the contract (%s): %s", request.path, missing)
        context = {"missing": missing or [str(exception).strip()]}
        return self.render("aimonitor/database_problem.html", context)

    def render(self, template: str, context: dict) -> HttpResponse:
        # Rendered without the request: the context processors would query the database.
        response = HttpResponse(loader.get_template(template).render(context), status=503)
        response["Retry-After"] = "10"
        return response


class RejectNulCharactersMiddleware:
    """A NUL character in a parameter is a 400.

    No field of the console takes one, and PostgreSQL refuses text containing it:
    without this, a filter the forms do not validate (the Django admin's list filters)
    would send it to the database and fail with a 500.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sources = [request.GET, request.POST] if request.method == "POST" else [request.GET]
        for params in sources:
            for name, values in params.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    raise BadRequest(_("Parameters must not contain NUL characters."))
        return self.get_response(request)
