"""Test helpers for second factors and step-up: enrol a user with a known TOTP secret (or read the
secret a persona was enrolled with), compute codes (``custos_testing.totp``, written from the RFC, not the
library under test), and move a session's last check back in time."""

from __future__ import annotations

import time

from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa import app_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from allauth.mfa.utils import decrypt
from django.conf import settings

from custos_testing.totp import totp

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def secret_of(user) -> str | None:
    """The TOTP secret ``user`` is enrolled with (as their authenticator app holds it), or None."""
    authenticator = Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).first()
    return decrypt(authenticator.data["secret"]) if authenticator else None


def enrol(user, secret: str = SECRET) -> str:
    """Give ``user`` an authenticator app (unless they have one); its secret."""
    if (known := secret_of(user)) is not None:
        return known
    TOTP.activate(user, secret)
    return secret


def totp_code(secret: str = SECRET, *, offset: int = 0) -> str:
    """The code an authenticator app shows now (``offset`` periods later or earlier)."""
    return totp(secret, time.time() + offset * app_settings.TOTP_PERIOD, step=app_settings.TOTP_PERIOD)


def age_second_factor(client, minutes: float | None = None, *, session_key: str | None = None) -> None:
    """Move the session's second-factor checks back past the step-up window (or by ``minutes``):
    the test client's session, or the one of ``session_key`` (a browser's)."""
    from django.contrib.sessions.backends.db import SessionStore

    minutes = settings.CUSTOS_STEP_UP_MINUTES + 1 if minutes is None else minutes
    session = client.session if session_key is None else SessionStore(session_key)
    records = session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    for record in records:
        record["at"] -= minutes * 60
    session[AUTHENTICATION_METHODS_SESSION_KEY] = records
    session.save()


def check_second_factor_now(client, user) -> None:
    """Record a second-factor check now in the client's session, as passing one at sign-in does."""
    from allauth.account.internal.flows.login import _AUTHENTICATION_METHODS_USER_SESSION_KEY
    from allauth.account.internal.userkit import user_id_to_str

    session = client.session
    session[_AUTHENTICATION_METHODS_USER_SESSION_KEY] = user_id_to_str(user)
    records = session.get(AUTHENTICATION_METHODS_SESSION_KEY) or []
    session[AUTHENTICATION_METHODS_SESSION_KEY] = [*records, {"method": "mfa", "at": time.time(), "type": "totp"}]
    session.save()


def stepped_up(client, user):
    """``client`` signed in as ``user`` with an enrolled factor checked just now (an investigator
    who revokes a grant enrols one first: the action needs it)."""
    enrol(user)
    client.force_login(user)
    check_second_factor_now(client, user)
    return client


def unused_code(user, order: tuple[int, ...] = (0, 1, -1)) -> str:
    """A code of ``user``'s authenticator that is accepted now and not used yet (a code is accepted
    once: allauth remembers used ones in the cache; the steps either side of now are accepted too).
    Waits for the next step when all three were used."""
    from django.core.cache import cache

    factor = TOTP(Authenticator.objects.get(user=user, type=Authenticator.Type.TOTP))
    secret = secret_of(user)
    while True:
        for offset in order:
            code = totp_code(secret, offset=offset)
            if cache.get(factor._get_used_cache_key(code)) is None:
                return code
        time.sleep(app_settings.TOTP_PERIOD - time.time() % app_settings.TOTP_PERIOD + 0.1)


def wrong_code(user=None) -> str:
    """Six digits that none of the accepted codes of ``user`` (now and the steps either side) is."""
    secret = secret_of(user) if user is not None else SECRET
    accepted = {totp_code(secret, offset=offset) for offset in (-1, 0, 1)}
    return next(code for code in ("000000", "111111", "222222", "333333") if code not in accepted)
