from __future__ import annotations

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET


@never_cache
@require_GET
def healthz(request):
    """200 when the database answers, 503 otherwise. No login."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        connection.close_if_unusable_or_obsolete()
        return JsonResponse({"database": "unavailable", "error": str(error).strip()}, status=503)
    return JsonResponse({"database": "ok"})
