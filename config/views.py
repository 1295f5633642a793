"""Project-wide views: the server error page, which must work when nothing else does."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponseServerError
from django.template import loader

logger = logging.getLogger(__name__)

FALLBACK_500 = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error · Custos</title></head>'
    '<body><main id="main"><h1>Something went wrong</h1>'
    "<p>The error was logged. Nothing was changed by the failed request.</p></main></body></html>"
)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponseServerError:
    """The 500 page in the layout, rendered without the request: no session, user or database.

    If even that fails (a broken template, a missing static manifest), a fixed page is sent.
    """
    try:
        html = loader.render_to_string(template_name, {"custos_version": settings.CUSTOS_VERSION})
    except Exception:  # the error page must never raise
        logger.exception("the 500 page could not be rendered")
        html = FALLBACK_500
    return HttpResponseServerError(html)
