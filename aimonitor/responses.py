"""How every view answers a ``Refused`` (``aimonitor.operations.refusals``).

Invariant: one function, ``refusal_response``, turns a refusal into a response, and
it answers with the refusal's message and status (a view's own page may instead send
the person back to the list with the message, as the alerts' over-the-cap does):

- JSON (the request asks for ``application/json`` and not for HTML): ``{"error":
  message, "status": status}``;
- HTMX (not a history restore): the view's fragment if it has one (a table row
  says it in place), else a small ``role="alert"`` paragraph;
- a page: the view's page if it has one (the job page with the reason beside its
  retry button, the batch page, the bulk confirmation), else the 403 / 404 page for
  those statuses and the "cannot be done" page for the others.

Views that render their own page or fragment mix in ``RefusalMixin`` and fill
``refusal_page`` / ``refusal_fragment``; every other view's refusal reaches
``RefusalMiddleware``, which calls the same function.
"""

from __future__ import annotations

from django.http import HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.utils.cache import patch_vary_headers

from aimonitor.operations.refusals import Refused

PAGE_TEMPLATES = {403: "403.html", 404: "404.html"}
PAGE_TEMPLATE = "aimonitor/refused.html"
FRAGMENT_TEMPLATE = "aimonitor/refused.html#refusal"


def wants_json(request) -> bool:
    """A client that asks for JSON rather than HTML (``Accept: application/json``)."""
    return request.accepts("application/json") and not request.accepts("text/html")


def is_htmx(request) -> bool:
    htmx = getattr(request, "htmx", False)
    return bool(htmx and not htmx.history_restore_request)


def refusal_response(request, refusal: Refused, *, page=None, fragment=None) -> HttpResponse:
    """The answer to ``refusal``: JSON, the HTMX fragment or the page, with its status.

    ``page`` / ``fragment`` are the view's own renderers (called with the refusal;
    they may return None to fall back on the shared ones).
    """
    if wants_json(request):
        response = JsonResponse(
            {"error": refusal.message, "status": refusal.status}, status=refusal.status
        )
    elif is_htmx(request):
        response = fragment(refusal) if fragment else None
        if response is None:
            context = {"refusal": refusal}
            response = TemplateResponse(request, FRAGMENT_TEMPLATE, context, status=refusal.status)
    else:
        response = page(refusal) if page else None
        if response is None:
            template = PAGE_TEMPLATES.get(refusal.status, PAGE_TEMPLATE)
            context = {"refusal": refusal, "exception": refusal.message}
            response = TemplateResponse(request, template, context, status=refusal.status)
    # One URL answers a page, a fragment or JSON: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request", "Accept"])
    return response


class RefusalMixin:
    """A view whose refusals are answered by ``refusal_response``, with its own page
    (``refusal_page``) and fragment (``refusal_fragment``) where it has them."""

    def dispatch(self, request, *args, **kwargs):
        try:
            return super().dispatch(request, *args, **kwargs)
        except Refused as refusal:
            return refusal_response(
                request, refusal, page=self.refusal_page, fragment=self.refusal_fragment
            )

    def refusal_page(self, refusal: Refused) -> HttpResponse | None:
        """This view's page showing ``refusal``; None for the shared page."""
        return None

    def refusal_fragment(self, refusal: Refused) -> HttpResponse | None:
        """This view's HTMX fragment showing ``refusal``; None for the shared one."""
        return None


class RefusalMiddleware:
    """Any other view's ``Refused`` (and a ``NotPermitted`` from anywhere) is answered by
    ``refusal_response`` instead of Django's handlers."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, Refused):
            response = refusal_response(request, exception)
            return response.render() if hasattr(response, "render") else response
        return None
