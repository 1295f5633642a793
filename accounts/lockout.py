"""Lockout after repeated failed logins (django-axes), as Custos answers and records it.

django-axes counts failures per username and per client address (``audit.context.client_ip``)
and refuses every ``authenticate()`` of a locked username or address before a password is
checked, so the login page, the admin login and the API token endpoint are covered alike,
whatever view calls ``authenticate()``. This module gives axes the username it counts, the
answer a locked-out client gets, and feeds the start of a lockout to the ledger (where the
oversight scan turns it into an alert).
"""

from __future__ import annotations

import unicodedata

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse

LOCKED_OUT_MESSAGE = (
    "Too many failed sign-in attempts for this username or from this address. "
    "Sign-in is paused for {minutes} minutes; an administrator can lift it sooner."
)


def username_key(username: str) -> str:
    """The form of a username that is compared: NFKC, then case-folded (``ÅSA`` = ``åsa``)."""
    return unicodedata.normalize("NFKC", username or "").casefold()


def attempted_username(request: HttpRequest, credentials: dict | None) -> str:
    """The username axes counts failures against: normalised, so that ``Ines`` and ``INES``
    share one counter (AXES_USERNAME_CALLABLE)."""
    credentials = credentials or {}
    username = credentials.get("username") or credentials.get("email")
    if username is None:
        # No credentials (axes asking before authenticate): the login forms' own field names.
        data = getattr(request, "data", None) or request.POST
        username = data.get("username") or data.get("login") or ""
    return username_key(str(username))[:150]


def cool_off_minutes() -> int:
    return int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)


def locked_out_message() -> str:
    return LOCKED_OUT_MESSAGE.format(minutes=cool_off_minutes())


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """What a locked-out client gets (AXES_LOCKOUT_CALLABLE): the same for every username,
    existing or not, and whether the password was right or wrong."""
    status = settings.AXES_HTTP_RESPONSE_CODE
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": locked_out_message(), "code": "locked_out"}, status=status)
    context = {"message": locked_out_message(), "minutes": cool_off_minutes()}
    return TemplateResponse(request, "accounts/locked_out.html", context, status=status).render()


def lockout_started(request) -> bool:
    """True when this failed attempt is the one that locked the username or address; false for
    the attempts refused during a lockout (axes signals those too, but counts nothing)."""
    return getattr(request, "axes_failures_since_start", None) is not None
