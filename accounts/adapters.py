"""django-allauth, fitted to Custos: accounts are made by staff, never by sign-up; the first
second factor can be set up right after signing in without typing the password again."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from allauth.account import app_settings as account_settings
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.internal.flows.login import get_authentication_records
from allauth.core import context
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.http import HttpRequest

from . import factors


class AccountAdapter(DefaultAccountAdapter):
    # The same answer for a wrong password, an unknown username and an inactive account.
    error_messages = {
        **DefaultAccountAdapter.error_messages,
        "username_password_mismatch": (
            "Please enter a correct username and password. Note that both fields may be case-sensitive."
        ),
    }

    def is_open_for_signup(self, request: HttpRequest) -> bool:
        return False

    def get_login_stages(self) -> list[str]:
        """allauth's stages, its second-factor step replaced by one that counts a second factor
        asserted by the identity provider (``accounts.sso.SecondFactorStage``)."""
        stages = super().get_login_stages()
        return [
            "accounts.sso.SecondFactorStage" if stage == "allauth.mfa.stages.AuthenticateStage" else stage
            for stage in stages
        ]

    def is_reauthentication_required(self, *, app: str, **kwargs) -> bool:
        """allauth asks for the password again before any change to one's factors. The one
        exception: a user with no second factor yet, enrolling their first within
        ``ACCOUNT_REAUTHENTICATION_TIMEOUT`` of typing their password to sign in (the
        enrolment that a required role is taken through at first sign-in)."""
        request = context.request
        if app == "allauth.mfa" and request is not None and _first_enrolment_after_sign_in(request):
            return False
        return super().is_reauthentication_required(app=app, **kwargs)


def _first_enrolment_after_sign_in(request: HttpRequest) -> bool:
    """True within the timeout after the password was typed, while the user had no factor when
    they typed it (setting up the first one, then seeing its recovery codes)."""
    user = request.user
    if not user.is_authenticated:
        return False
    # The sign-in: a password, or the identity provider (whose users have no password to retype).
    records = [r for r in get_authentication_records(request, user) if r.get("method") in ("password", "socialaccount")]
    if not records or time.time() - records[-1]["at"] >= account_settings.REAUTHENTICATION_TIMEOUT:
        return False
    typed_at = datetime.fromtimestamp(records[-1]["at"], tz=UTC)
    return not Authenticator.objects.filter(user=user, type__in=factors.FACTOR_TYPES, created_at__lt=typed_at).exists()


class MFAAdapter(DefaultMFAAdapter):
    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": ("Your role needs a second factor: add another one before removing this one."),
    }

    def can_delete_authenticator(self, authenticator) -> bool:
        """A user whose role needs a second factor keeps at least one."""
        user = authenticator.user
        if not factors.second_factor_required(user):
            return True
        others = type(authenticator).objects.filter(user=user, type__in=factors.FACTOR_TYPES)
        return others.exclude(pk=authenticator.pk).exists()
