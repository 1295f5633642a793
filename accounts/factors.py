"""Second factors (django-allauth's MFA), as the rest of Custos asks about them.

allauth keeps the authenticators (TOTP, WebAuthn keys, recovery codes) and runs the sign-in
stage that asks for one. This module is what step-up, single sign-on and the sign-in forms
call:

- ``has_second_factor(user)``: an authenticator app or a security key / passkey is enrolled;
- ``check_second_factor(user, code)``: a TOTP code, or an unused recovery code (consumed);
  every failure is on the ledger and, after ``CUSTOS_LOCKOUT_FAILURES`` of them within the
  lockout's cool-off, every code is refused until the cool-off has passed (a second-factor
  lockout, like django-axes's for passwords);
- ``key_request_options(user)`` / ``verify_key(user, credential)``: the same for a security key
  or passkey (WebAuthn): the challenge the browser signs, then the signed answer checked against
  the user's own keys, under the same recording and the same pause;
- ``record_second_factor(request, method=...)`` / ``second_factor_at(request)``: the time of
  the last second-factor check in this session, kept in allauth's own authentication records
  (the session's ``mfa`` entries), so that allauth's reauthentication and Custos's step-up
  read the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

from allauth.account.internal.flows.login import get_authentication_records, record_authentication
from allauth.mfa.models import Authenticator
from allauth.mfa.webauthn.internal import auth as webauthn
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import Resolver404, resolve
from django.utils import timezone

import audit
from audit.events import Action
from audit.models import AuditEvent

from .models import User

# Kinds of second factor a user can enrol; recovery codes only back them up.
FACTOR_TYPES = (Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN)


def second_factor_required(user: User) -> bool:
    """True when the user's roles (or staff status) are among ``CUSTOS_MFA_REQUIRED_ROLES``."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    required = set(settings.CUSTOS_MFA_REQUIRED_ROLES)
    return bool(user.role_names & required) or (user.is_staff and "staff" in required)


def enrolment_missing(user: User) -> bool:
    """True when the user must have a second factor and has none yet: until they enrol,
    nothing but enrolment is open to them (``SecondFactorRequiredMiddleware``, the API)."""
    return second_factor_required(user) and not has_second_factor(user)


def has_second_factor(user: User) -> bool:
    """True when the user has an authenticator app or a security key / passkey."""
    if user is None or not user.pk:
        return False
    return Authenticator.objects.filter(user=user, type__in=FACTOR_TYPES).exists()


def failures_counted(user: User) -> int:
    """Wrong second-factor codes of this user within the lockout's cool-off."""
    since = timezone.now() - settings.AXES_COOLOFF_TIME
    return AuditEvent.objects.filter(
        action=Action.AUTH_SECOND_FACTOR_FAILED,
        target_type="accounts.user",
        target_id=str(user.pk),
        occurred_at__gte=since,
    ).count()


def second_factor_paused(user: User) -> bool:
    """True while this user's codes are refused after too many wrong ones."""
    return failures_counted(user) >= settings.AXES_FAILURE_LIMIT


def verify_code(user: User, code: str, *, request: HttpRequest | None = None) -> Authenticator | None:
    """The authenticator that accepts ``code`` (TOTP first, then recovery codes), or None.

    A recovery code that matches is used up. Refused outright while the user's codes are paused.
    Every refusal is an ``auth.second_factor_failed`` event (never the code itself).
    """
    code = (code or "").strip()
    if not user.is_active:
        return None
    if second_factor_paused(user):
        _record_failure(user, "paused", request)
        return None
    authenticators = Authenticator.objects.filter(
        user=user, type__in=[Authenticator.Type.TOTP, Authenticator.Type.RECOVERY_CODES]
    ).order_by("type")  # "recovery_codes" < "totp": sorted below so that TOTP is tried first
    for authenticator in sorted(authenticators, key=lambda item: item.type != Authenticator.Type.TOTP):
        if code and authenticator.wrap().validate_code(code):
            authenticator.record_usage()
            return authenticator
    _record_failure(user, "wrong_code", request)
    return None


def check_second_factor(user: User, code: str, *, request: HttpRequest | None = None) -> bool:
    """True when ``code`` is a current TOTP code or an unused recovery code of ``user`` (which
    is then used up); failures are recorded and, past the limit, pause every code."""
    return verify_code(user, code, request=request) is not None


def has_security_key(user: User) -> bool:
    """True when the user has a security key or passkey (WebAuthn)."""
    return bool(user.pk) and Authenticator.objects.filter(user=user, type=Authenticator.Type.WEBAUTHN).exists()


def key_request_options(user: User) -> dict:
    """The challenge for the user's own security keys (WebAuthn ``get()`` options). The state
    of the ceremony is kept in the session; ``verify_key`` completes it once."""
    return webauthn.begin_authentication(user)


def verify_key(user: User, credential: dict | str, *, request: HttpRequest | None = None) -> Authenticator | None:
    """The security key of ``user`` that signed the challenge of ``key_request_options``, or None.

    ``credential`` is the browser's answer (a dict, or its JSON text). Like a code: refused
    outright while the user's second factor is paused, and every refusal is an
    ``auth.second_factor_failed`` event (reason ``wrong_key``). A key of someone else, an
    answer to another challenge, or one replayed is refused.
    """
    if not user.is_active:
        return None
    if second_factor_paused(user):
        _record_failure(user, "paused", request)
        return None
    try:
        if isinstance(credential, str):
            credential = json.loads(credential)
        webauthn.parse_authentication_response(credential)
        authenticator = webauthn.complete_authentication(user, credential)
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError):
        # Whatever a browser, or someone posting by hand, sends: a refusal, never an error.
        authenticator = None
    if authenticator is None:
        _record_failure(user, "wrong_key", request)
        return None
    authenticator.record_usage()
    return authenticator


def _record_failure(user: User, reason: str, request: HttpRequest | None) -> None:
    with transaction.atomic():
        audit.record(
            action=Action.AUTH_SECOND_FACTOR_FAILED,
            actor=user,
            target=user,
            details={"reason": reason, "failures": failures_counted(user) + 1},
            request=request,
        )


def record_second_factor(
    request: HttpRequest,
    *,
    method: str,
    user: User | None = None,
    authenticator: Authenticator | None = None,
    reauthenticated: bool = False,
) -> None:
    """Record that a second factor was checked now in this session (at sign-in, at step-up, or
    asserted by the organisation's identity provider): in allauth's authentication records and
    on the ledger (``auth.second_factor_passed``). ``user`` defaults to the signed-in user (a
    sign-in stage passes the user who is signing in). ``reauthenticated``: asked for by allauth
    before a change to one's factors (allauth's "confirm it is you" looks for that mark)."""
    user = user or request.user
    extra = {"type": method}
    if reauthenticated:
        extra["reauthenticated"] = True
    details = {"method": method}
    if authenticator is not None:
        extra["id"] = authenticator.pk
        if authenticator.type != method:  # a step-up says which factor it was done with
            details["factor"] = authenticator.type
    record_authentication(request, user, "mfa", **extra)
    with transaction.atomic():
        audit.record(
            action=Action.AUTH_SECOND_FACTOR_PASSED,
            actor=user,
            target=user,
            details=details,
            request=request,
        )


def second_factor_at(request: HttpRequest) -> datetime | None:
    """When a second factor was last checked in this session, or None (never, or not for the
    user signed in now)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return None
    times = [record["at"] for record in get_authentication_records(request, user) if record.get("method") == "mfa"]
    return datetime.fromtimestamp(max(times), tz=UTC) if times else None


def asserted_by_provider(request: HttpRequest) -> bool:
    """True when this session's sign-in came with a second factor the organisation's identity
    provider asserted (``amr``/``acr``, recorded by single sign-on): it counts as the second
    factor, so such a session is not sent to enrol one of Custos's own."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return False
    return any(
        record.get("method") == "mfa" and record.get("type") == "sso"
        for record in get_authentication_records(request, user)
    )


def second_factor_within(request: HttpRequest, window: timedelta) -> bool:
    """True when a second factor was checked in this session within ``window``."""
    at = second_factor_at(request)
    return at is not None and timezone.now() - at <= window


# --- enrolment before anything else ---------------------------------------------------------

ENROLMENT_REQUIRED_CODE = "second_factor_required"
ENROLMENT_REQUIRED_MESSAGE = (
    "Your role needs a second factor. Set one up at /accounts/2fa/ (an authenticator app or a "
    "security key); until then, nothing else is open to you."
)
# The pages a user who must enrol may still reach: enrolment itself, "confirm it is you", the
# recovery codes shown after enrolment, and signing out.
ENROLMENT_ROUTES = frozenset(
    {
        "mfa_index",
        "mfa_activate_totp",
        "mfa_add_webauthn",
        "mfa_reauthenticate",
        "mfa_view_recovery_codes",
        "mfa_download_recovery_codes",
        "account_reauthenticate",
        "account_logout",
        "account_inactive",
    }
)


def template_context(request: HttpRequest) -> dict:
    """Context processor: ``mfa_enrolment_missing``, asked only by the pages that show it."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"mfa_enrolment_missing": partial(enrolment_missing, user)}


class SecondFactorRequiredMiddleware:
    """A signed-in user of a role that needs a second factor, who has none yet, is sent to
    enrolment from every page (the API answers 403 ``second_factor_required``). Token callers
    of the API are refused by ``accounts.permissions.SecondFactorEnrolled`` and at the token endpoint."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not self._open(request)
            and enrolment_missing(user)
            and not asserted_by_provider(request)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": ENROLMENT_REQUIRED_MESSAGE, "code": ENROLMENT_REQUIRED_CODE}, status=403)
            return redirect("mfa_index")
        return self.get_response(request)

    @staticmethod
    def _open(request: HttpRequest) -> bool:
        try:
            match = resolve(request.path_info)
        except Resolver404:
            return False
        return match.url_name in ENROLMENT_ROUTES and not match.namespace
