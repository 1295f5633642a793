"""The signed-in user's own account pages, and the few of allauth's security-key pages that
Custos changes."""

from __future__ import annotations

from allauth.account.views._reauthenticate import BaseReauthenticateView
from allauth.mfa.adapter import get_adapter as get_mfa_adapter
from allauth.mfa.webauthn.views import ReauthenticateWebAuthnView, RemoveWebAuthnView
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, update_session_auth_hash
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET

from . import factors, stepup
from .actions import TokenLimitReached, api_token_issue, user_set_password, user_update
from .http import SignedInRequest
from .models import User, available_timezones


class CountedPasswordChangeForm(PasswordChangeForm):
    """The current password is checked through ``authenticate()``, like a sign-in: a wrong one is
    an ``auth.login_failed`` event and counts towards the lockout (django-axes), so a borrowed
    session cannot guess the password here without limit."""

    def __init__(self, user, data=None, *, request: SignedInRequest):
        self.request = request
        super().__init__(user, data)

    def clean_old_password(self):
        old_password = self.cleaned_data["old_password"]
        if authenticate(self.request, username=self.user.get_username(), password=old_password) is None:
            raise ValidationError(self.error_messages["password_incorrect"], code="password_incorrect")
        return old_password


@sensitive_post_parameters("old_password", "new_password1", "new_password2")
def password_change(request: SignedInRequest) -> HttpResponse:
    """Change one's own password: the current one, then the new one twice (the validators:
    at least 12 characters, not a common password, not like the username, not all digits).
    Every other session and every API token of the user ends; this session goes on."""
    user = request.user
    if not user.has_usable_password():  # signs in through the organisation's sign-on
        return render(request, "accounts/password_change.html", {"form": None})
    form = CountedPasswordChangeForm(user, request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        try:
            user_set_password(actor=user, user=user, password=form.cleaned_data["new_password1"])
        except ValidationError as error:
            form.add_error("new_password1", error.messages)
        else:
            # The action ended every session of the user, this one included: carry this one on
            # under a new key with the new password's hash.
            update_session_auth_hash(request, user)
            messages.success(request, "Password changed. Your other sessions and your API tokens have ended.")
            return redirect("home")
    return render(request, "accounts/password_change.html", {"form": form})


class SettingsForm(forms.ModelForm):
    time_zone = forms.TypedChoiceField(
        label="Time zone",
        choices=[],
        help_text="Dates and times in pages and e-mails are shown in this time zone.",
    )

    class Meta:
        model = User
        fields = ["time_zone"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(zone, zone.replace("_", " ")) for zone in sorted(available_timezones())]


def user_settings(request: SignedInRequest) -> HttpResponse:
    """The signed-in user's own settings (the time zone they read times in); recorded as ``user.updated``."""
    user = request.user
    form = SettingsForm(request.POST or None, instance=User.objects.get(pk=user.pk))
    if request.method == "POST" and form.is_valid():
        try:
            user_update(actor=user, user=user, time_zone=form.cleaned_data["time_zone"])
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Settings saved: times are now shown in {user.time_zone}.")
            return redirect("accounts:settings")
    return render(request, "accounts/settings.html", {"form": form})


@stepup.step_up_required
def api_token(request: SignedInRequest) -> HttpResponse:
    """Get an API token from the signed-in session, for those who have no password to give the
    token endpoint (single sign-on; it works for local accounts too). Only right after a
    second-factor check (``CUSTOS_STEP_UP_MINUTES``): the identity provider's asserted one or
    Custos's own, or a code typed here. The token is shown once, in this answer only."""
    context: dict = {"minutes": settings.CUSTOS_STEP_UP_MINUTES}
    if request.method == "POST" and request.step_up.ok:
        try:
            instance, token = api_token_issue(
                actor=request.user, second_factor_at=factors.second_factor_at(request), via="page", request=request
            )
        except TokenLimitReached as error:
            context["error"] = error.messages[0]
        else:
            context.update(token=token, instance=instance)
    return render(request, "accounts/api_token.html", context)


# --- security keys (WebAuthn) ---------------------------------------------------------------


@require_GET
@never_cache
def step_up_key(request: SignedInRequest) -> JsonResponse:
    """The challenge a security key signs for a step-up (``static/js/security-key.js`` asks for it
    when "Use a security key" is pressed; the answer is posted with the protected form as
    ``step_up_credential``). 404 for a user without a key."""
    if not factors.has_security_key(request.user):
        raise Http404("No security key.")
    return JsonResponse({"request_options": factors.key_request_options(request.user)})


class RemoveSecurityKeyView(RemoveWebAuthnView):
    """allauth's "remove this key", except the last second factor of a role that needs one
    (allauth asks the adapter only when an authenticator app is removed)."""

    def form_valid(self, form) -> HttpResponse:
        adapter = get_mfa_adapter()
        if not adapter.can_delete_authenticator(self.object):
            form.add_error(None, adapter.error_messages["cannot_delete_authenticator"])
            return self.form_invalid(form)
        return super().form_valid(form)


class KeyReauthenticateView(ReauthenticateWebAuthnView):
    """The "confirm it is you" page with a security key, before a change to one's factors: checked and
    recorded like a code (``SecondFactorKeyAgainForm``); a refused key shows the page again with
    the error (allauth would send to the login page)."""

    def form_valid(self, form) -> HttpResponse:
        form.save()
        return BaseReauthenticateView.form_valid(self, form)

    def form_invalid(self, form) -> HttpResponse:
        return self.render_to_response(self.get_context_data(form=form))

    def get_context_data(self, **kwargs) -> dict:
        context = BaseReauthenticateView.get_context_data(self, **kwargs)
        context["js_data"] = {"request_options": factors.key_request_options(self.request.user)}
        return context


remove_security_key = RemoveSecurityKeyView.as_view()
reauthenticate_with_key = KeyReauthenticateView.as_view()
