"""Test helpers for second factors and step-up: enrol a user with a known TOTP secret, compute
its current code (allauth's own TOTP functions), and move a session's last check back in time."""

from __future__ import annotations

import time

from allauth.account.authentication import AUTHENTICATION_METHODS_SESSION_KEY
from allauth.mfa import app_settings
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from django.conf import settings

SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def enrol(user, secret: str = SECRET) -> None:
    if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
        TOTP.activate(user, secret)


def totp_code(secret: str = SECRET, *, offset: int = 0) -> str:
    """The code an authenticator app shows now (``offset`` periods later or earlier)."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // app_settings.TOTP_PERIOD + offset))


def age_second_factor(client, minutes: float | None = None) -> None:
    """Move the session's second-factor checks back past the step-up window (or by ``minutes``)."""
    minutes = settings.CUSTOS_STEP_UP_MINUTES + 1 if minutes is None else minutes
    session = client.session
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
