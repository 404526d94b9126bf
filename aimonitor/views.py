from __future__ import annotations

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@never_cache
@require_GET
def healthz(request):
    """200 when the database answers, 503 otherwise. No login: the database's own error
    (host, port, socket, user) goes to the log, never to the anonymous caller."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        logger.warning("Health check: the database is unavailable: %s", error)
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"database": "unavailable"}, status=503)
    return JsonResponse({"database": "ok"})
