"""Forms of the sign-in stages that Custos changes: the second-factor code, or the security
key's answer, goes through ``accounts.factors`` (recorded failures, a pause after too many,
recovery codes used up)."""

from __future__ import annotations

from allauth.core import context
from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from allauth.mfa.webauthn.forms import AuthenticateWebAuthnForm, ReauthenticateWebAuthnForm
from django.conf import settings
from django.core.exceptions import ValidationError

from . import factors

KEY_REFUSED_MESSAGE = "That security key was not accepted: use a key added to your account, or a code."
PAUSED_MESSAGE = (
    "Too many wrong codes for this account. Codes are refused for {minutes} minutes; "
    "an administrator can reset your second factor if you have lost it."
)


class _CodeChecked:
    """``clean_code`` through ``accounts.factors`` rather than allauth's own loop."""

    def clean_code(self) -> str:
        code = self.cleaned_data["code"]
        request = context.request
        if factors.second_factor_paused(self.user):
            factors.verify_code(self.user, code, request=request)  # recorded as refused
            raise _paused()
        authenticator = factors.verify_code(self.user, code, request=request)
        if authenticator is None:
            raise get_adapter().validation_error("incorrect_code")
        authenticator.user = self.user
        self.authenticator = authenticator
        return code

    def save(self) -> None:
        _record(self)


def _record(form) -> None:
    """The check passed: recorded in the session and on the ledger with the factor's type
    (``totp``, ``recovery_codes``, ``webauthn``). A check asked for before a change to one's
    factors is marked as allauth's reauthentication, which that change looks for."""
    factors.record_second_factor(
        context.request,
        method=form.authenticator.type,
        user=form.user,
        authenticator=form.authenticator,
        reauthenticated=form.reauthenticated,
    )


def _paused() -> ValidationError:
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    return ValidationError(PAUSED_MESSAGE.format(minutes=minutes), code="paused")


class _KeyChecked:
    """``clean_credential`` through ``accounts.factors.verify_key`` rather than allauth's own:
    refusals recorded, and refused while the user's second factor is paused."""

    def clean_credential(self):
        credential = self.cleaned_data["credential"]
        paused = factors.second_factor_paused(self.user)
        authenticator = factors.verify_key(self.user, credential, request=context.request)
        if paused:
            raise _paused()
        if authenticator is None:
            raise ValidationError(KEY_REFUSED_MESSAGE, code="incorrect_code")
        authenticator.user = self.user
        self.authenticator = authenticator
        return authenticator

    def save(self) -> None:
        _record(self)


class SecondFactorForm(_CodeChecked, AuthenticateForm):
    """The code asked for at sign-in, after the password."""

    reauthenticated = False


class SecondFactorAgainForm(_CodeChecked, ReauthenticateForm):
    """The code asked for again by allauth before changing one's own factors."""

    reauthenticated = True


class SecondFactorKeyForm(_KeyChecked, AuthenticateWebAuthnForm):
    """A security key instead of the code at sign-in, after the password."""

    reauthenticated = False


class SecondFactorKeyAgainForm(_KeyChecked, ReauthenticateWebAuthnForm):
    """A security key instead of the code before changing one's own factors."""

    reauthenticated = True
