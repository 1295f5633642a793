"""Login required everywhere, and a session that ends mid-task loses nothing.

Django's ``LoginRequiredMiddleware`` sends an anonymous request to the login page with
``next`` set to the URL asked for. For a form posted after the session ended that URL is
often POST-only (answering 405 after login) and the typed input is gone; for a status poll
the login page arrives with 200 where JSON was expected. Here:

- a POST keeps its input in the (new, anonymous) session and returns after login to the page
  that held the form, which fills the form back in (``kept_input``, ``static/js/keep-input.js``).
  The input is bound to the user whose session timed out on this browser
  (``timeouts.TIMED_OUT_USER``) and handed back to that user only: anyone else who signs in
  next on the browser never sees it (it is dropped), and a POST from a browser whose signed-in
  user is unknown (never signed in, or its session gone) keeps nothing;
- a request for JSON gets 401 with ``{"signed_out": true}`` so a poller can stop and say so.
"""

from __future__ import annotations

from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware
from django.contrib.auth.views import redirect_to_login
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import resolve_url
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from .timeouts import TIMED_OUT_USER

KEPT_INPUT = "kept_input"
NOT_KEPT = {"csrfmiddlewaretoken", "password", "password1", "password2", "step_up_code", "step_up_credential"}
MAX_KEPT_CHARS = 100_000  # a session is not a file store


class SessionAwareLoginRequiredMiddleware(LoginRequiredMiddleware):
    def handle_no_permission(self, request: HttpRequest, view_func) -> HttpResponse:
        if wants_json(request):
            return JsonResponse({"signed_out": True, "detail": "Your session has ended; log in again."}, status=401)
        if request.method == "POST":
            # Never back to the POST-only address (405 after login): to the form's page.
            page = form_page(request)
            if page is None:
                return redirect_to_login(resolve_url(settings.LOGIN_REDIRECT_URL), resolve_url(settings.LOGIN_URL))
            keep_input(request, page)
            return redirect_to_login(page, resolve_url(settings.LOGIN_URL))
        return super().handle_no_permission(request, view_func)


def wants_json(request: HttpRequest) -> bool:
    accept = request.headers.get("Accept", "")
    return request.path.endswith(".json") or (accept.startswith("application/json") and "text/html" not in accept)


def form_page(request: HttpRequest) -> str | None:
    """The same-site page the form was posted from (its Referer), or None."""
    referer = request.headers.get("Referer", "")
    if not referer or not url_has_allowed_host_and_scheme(referer, {request.get_host()}, request.is_secure()):
        return None
    parts = urlsplit(referer)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def keep_input(request: HttpRequest, page: str) -> None:
    """Keep the input of the first form posted after this browser's session timed out, for the
    user whose session it was. Only the first: the owner's mark is taken with it, so someone who
    finds the browser afterwards cannot plant text for the owner to send unread."""
    owner = request.session.pop(TIMED_OUT_USER, None)
    if owner is None:  # whose input it is cannot be told: it is handed to no one
        return
    fields = {name: request.POST.getlist(name) for name in request.POST if name not in NOT_KEPT}
    if sum(len(value) for values in fields.values() for value in values) > MAX_KEPT_CHARS:
        return
    request.session[KEPT_INPUT] = {"user": owner, "page": urlsplit(page).path, "action": request.path, "fields": fields}


def kept_input(request: HttpRequest) -> dict:
    """Context processor: the input kept for this page, handed over once (then forgotten), to
    the user who typed it only; for anyone else it is dropped at once."""
    session = getattr(request, "session", None)
    user = getattr(request, "user", None)
    if session is None or user is None or not user.is_authenticated:
        return {}
    kept = session.get(KEPT_INPUT)
    if kept and kept.get("user") != user.pk:
        del session[KEPT_INPUT]
        return {}
    if not kept or kept.get("page") != request.path:
        return {}
    del session[KEPT_INPUT]
    return {"kept_input": {"action": kept["action"], "fields": kept["fields"]}}


class TimeZoneMiddleware:
    """Every date and time a signed-in user reads is in their own time zone (``User.time_zone``).

    Templates convert aware datetimes to the active zone; the API keeps ISO 8601 with offsets.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        zone = getattr(user, "time_zone", "") if user is not None and user.is_authenticated else ""
        try:
            timezone.activate(ZoneInfo(zone)) if zone else timezone.deactivate()
        except (ZoneInfoNotFoundError, ValueError):  # a zone since dropped from the system's database
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
