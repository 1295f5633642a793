"""Project-wide views: the server error page, which must work when nothing else does.

A database that cannot be reached (refused, gone mid-request, shutting down, too many
connections) is not a server error: the request is answered 503 with ``Retry-After``, in the
API's error shape under ``/api/`` and as a page elsewhere, whichever code met it (a view, the
session, the login check). Nothing was changed: the failed transaction rolled back.
"""

from __future__ import annotations

import logging
import sys

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader

logger = logging.getLogger(__name__)

FALLBACK_500 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error · Custos</title></head>'
    '<body><main id="main"><h1>Something went wrong</h1>'
    "<p>The error was logged. Nothing was changed by the failed request.</p></main></body></html>"
)


FALLBACK_503 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Unavailable · Custos</title></head>'
    '<body><main id="main"><h1>Custos is unavailable for a moment</h1>'
    "<p>Its database cannot be reached. Nothing was changed; try again in a few seconds.</p></main></body></html>"
)
RETRY_AFTER_SECONDS = 10
DATABASE_UNAVAILABLE = {
    "detail": "The database is unavailable; nothing was changed. Retry after the Retry-After header's seconds.",
    "code": "database_unavailable",
}


def database_unavailable(error: BaseException | None) -> bool:
    """Is ``error`` the database being out of reach (rather than a fault of the request or the code)?"""
    return isinstance(error, OperationalError | InterfaceError)


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith("/api/") or request.path.rstrip("/") == "/health"


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    """The 500 page in the layout, rendered without the request: no session, user or database.

    A database out of reach answers 503 instead (``unavailable``). If even the page fails (a
    broken template, a missing static manifest), a fixed page is sent.
    """
    if database_unavailable(sys.exc_info()[1]):
        return unavailable(request)
    try:
        html: str = loader.render_to_string(template_name, {"custos_version": settings.CUSTOS_VERSION})
    except Exception:  # the error page must never raise
        logger.exception("the 500 page could not be rendered")
        html = FALLBACK_500
    return HttpResponseServerError(html)


def unavailable(request: HttpRequest) -> HttpResponse:
    """503 with ``Retry-After``: the API's JSON error, or the page (rendered without the database)."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if wants_json(request):
        return JsonResponse(DATABASE_UNAVAILABLE, status=503, headers=headers)
    try:
        html: str = loader.render_to_string("503.html", {"custos_version": settings.CUSTOS_VERSION})
    except Exception:  # the error page must never raise
        logger.exception("the 503 page could not be rendered")
        html = FALLBACK_503
    return HttpResponse(html, status=503, headers=headers)
