"""Session timeouts: a signed-in session ends after a spell of inactivity and, active or not,
a fixed time after sign-in (``SESSION_IDLE_TIMEOUT``, ``SESSION_ABSOLUTE_TIMEOUT``)."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import SESSION_KEY, logout
from django.http import HttpRequest, HttpResponse

SIGNED_IN_AT = "custos_signed_in_at"
SEEN_AT = "custos_seen_at"
# Whose session this browser's timed out one was (kept in the anonymous session that follows,
# until the next sign-in): input posted meanwhile is kept for that user only
# (``accounts.middleware.keep_input``).
TIMED_OUT_USER = "custos_timed_out_user"
# The last-seen time is written at most this often: not every request needs a session write.
SEEN_RESOLUTION_SECONDS = 30


def start_session_clock(request: HttpRequest) -> None:
    """Called at sign-in (and for a signed-in session that has no clock yet): both timeouts
    count from now. A token request of the API signs in no session and starts no clock."""
    session = getattr(request, "session", None)
    if session is None or SESSION_KEY not in session:
        return
    now = int(time.time())
    request.session.pop(TIMED_OUT_USER, None)
    request.session[SIGNED_IN_AT] = now
    request.session[SEEN_AT] = now


def expired_because(session, now: float) -> str | None:
    """Why a signed-in session is over ("idle" or "absolute"), or None while it is not."""
    signed_in_at = session.get(SIGNED_IN_AT)
    seen_at = session.get(SEEN_AT, signed_in_at)
    if signed_in_at is None:
        return None
    if now - signed_in_at >= settings.SESSION_ABSOLUTE_TIMEOUT.total_seconds():
        return "absolute"
    if now - seen_at >= settings.SESSION_IDLE_TIMEOUT.total_seconds():
        return "idle"
    return None


class SessionTimeoutMiddleware:
    """Ends a session idle for ``SESSION_IDLE_TIMEOUT`` or older than ``SESSION_ABSOLUTE_TIMEOUT``.

    Runs before the view: the request goes on as anonymous, so a page redirects to the login
    page (which brings the user back afterwards) and an API call with the session answers 401
    or 403, exactly as for a visitor who never signed in. The sign-out is on the ledger
    (``auth.logout`` with the reason). API tokens have their own expiry and are not affected.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            self._check(request)
        return self.get_response(request)

    def _check(self, request: HttpRequest) -> None:
        now = time.time()
        session = request.session
        if SIGNED_IN_AT not in session:  # a session from before timeouts existed: count from now
            start_session_clock(request)
            return
        reason = expired_because(session, now)
        if reason is not None:
            request.session_end_reason = reason
            user_pk = request.user.pk
            logout(request)
            request.session[TIMED_OUT_USER] = user_pk
            return
        if now - session.get(SEEN_AT, 0) >= SEEN_RESOLUTION_SECONDS:
            session[SEEN_AT] = int(now)
