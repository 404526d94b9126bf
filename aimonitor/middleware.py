from __future__ import annotations

import logging

from django.db import OperationalError, connections
from django.http import HttpResponse
from django.template import loader

logger = logging.getLogger(__name__)


class DatabaseUnavailableMiddleware:
    """Answer a clear 503 page when PostgreSQL cannot be reached or a query times out.

    Django reconnects on the next request (CONN_HEALTH_CHECKS), so pages recover
    by themselves once the database is back.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError):
            return None
        logger.warning("Database unavailable for %s: %s", request.path, exception)
        # Drop the broken connection so the next request opens a fresh one.
        for conn in connections.all(initialized_only=True):
            conn.close_if_unusable_or_obsolete()
        # Rendered without the request: the context processors would query the database.
        html = loader.get_template("503.html").render({"error": str(exception).strip()})
        response = HttpResponse(html, status=503)
        response["Retry-After"] = "10"
        return response
