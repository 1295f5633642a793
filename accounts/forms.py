"""Forms of the sign-in stages that Custos changes: the second-factor code goes through
``accounts.factors`` (recorded failures, a pause after too many, recovery codes used up)."""

from __future__ import annotations

from allauth.core import context
from allauth.mfa.adapter import get_adapter
from allauth.mfa.base.forms import AuthenticateForm, ReauthenticateForm
from django.conf import settings
from django.core.exceptions import ValidationError

from . import factors

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
            minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
            raise ValidationError(PAUSED_MESSAGE.format(minutes=minutes), code="paused")
        authenticator = factors.verify_code(self.user, code, request=request)
        if authenticator is None:
            raise get_adapter().validation_error("incorrect_code")
        authenticator.user = self.user
        self.authenticator = authenticator
        return code

    def save(self) -> None:
        factors.record_second_factor(
            context.request, method=self.authenticator.type, user=self.user, authenticator=self.authenticator
        )


class SecondFactorForm(_CodeChecked, AuthenticateForm):
    """The code asked for at sign-in, after the password."""


class SecondFactorAgainForm(_CodeChecked, ReauthenticateForm):
    """The code asked for again by allauth before changing one's own factors."""
