"""Step-up: the decisions that matter need a second-factor check within the last few minutes.

``CUSTOS_STEP_UP_MINUTES`` (default 10) says how recent. The views that need it carry
``@step_up_required`` (pages) or ``@api_step_up_required`` (API), and the admin pages that
change users, roles, tokens, lockouts or the registry ``StepUpAdminMixin``; this module is the
one place the rule lives:

- **Pages.** The decorator looks at the session's last second-factor check
  (``factors.second_factor_at``). When it is too old and the form carries a code
  (``step_up_code``), the code is checked first (``factors.check_second_factor``: a TOTP code,
  used once, or an unused recovery code; wrong codes are counted towards the second-factor
  lockout) and a good one is recorded (``auth.second_factor_passed``, method ``step_up``, with
  the ``factor`` used). A user with a security key may instead press "Use a security key": the
  browser signs a challenge (``accounts:step_up_key``) and posts the same form with the answer
  (``step_up_credential``), checked by ``factors.verify_key`` under the same rules. The
  view acts only when ``request.step_up.ok``; otherwise it renders its own form again, bound to
  what was posted, and the ``accounts/_step_up.html`` field asks for the code. A form without
  typed input (a single button) gets ``confirm_page``: the posted values carried, a code field.
  Admin forms built within ``guard`` carry the code as a form field (``StepUpFormMixin``) and
  are simply invalid until it passed, so the admin re-renders them the usual way.
- **API.** A token remembers when it was obtained or stepped up with a code
  (``TokenSecondFactor``); a session used with the API, its session's check. The view calls
  ``request.step_up.demand()`` at the point it would act, after the object lookup and the
  permission check, so that only a caller who could act ever hears ``step_up_required``
  (403), never someone the chokepoints refuse.

A user without a second factor cannot pass: these actions need an enrolled factor, and the
page says so with a link to enrolment. See docs/identity.md, "Step-up".
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import wraps

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from rest_framework import exceptions

from . import factors
from .models import TokenSecondFactor

CODE_FIELD = "step_up_code"
KEY_FIELD = "step_up_credential"
STEP_UP_CODE = "step_up_required"
METHOD = "step_up"
WRONG_CODE = "That code was not accepted: enter the code your authenticator app shows now, or an unused recovery code."
NO_CODE = "Enter the code from your authenticator app."
NO_CODE_OR_KEY = "Enter the code from your authenticator app, or use your security key."
WRONG_KEY = "That security key was not accepted: use a key added to your account, or enter a code."


def window() -> timedelta:
    return timedelta(minutes=settings.CUSTOS_STEP_UP_MINUTES)


def is_recent(checked_at: datetime | None, now: datetime | None = None) -> bool:
    """True when a second factor was checked within the step-up window before ``now``."""
    return checked_at is not None and (now or timezone.now()) - checked_at <= window()


class StepUpRequired(exceptions.PermissionDenied):
    """The API's refusal: 403 with ``code`` ``step_up_required``."""

    default_code = STEP_UP_CODE

    def __init__(self, enrolled: bool = True) -> None:
        minutes = settings.CUSTOS_STEP_UP_MINUTES
        if enrolled:
            detail = (
                f"This action needs a second-factor check within the last {minutes} minutes: "
                "POST a code from your authenticator app to /api/v1/auth/step-up/, or get a new "
                "token with one (the otp field of /api/v1/auth/token/)."
            )
        else:
            detail = "This action needs a second factor, and you have none: enrol an authenticator app first."
        super().__init__(detail, code=STEP_UP_CODE)


@dataclass
class StepUp:
    """Where this request stands: a recent check, an enrolled factor, a code that failed."""

    ok: bool
    enrolled: bool
    error: str = ""
    key: bool = False  # the user has a security key to step up with
    posted: bool = field(default=False)  # a POST that the step-up held back

    @property
    def minutes(self) -> int:
        return settings.CUSTOS_STEP_UP_MINUTES

    def demand(self) -> None:
        """The API's gate: raise ``StepUpRequired`` unless the check is recent."""
        if not self.ok:
            raise StepUpRequired(enrolled=self.enrolled)


_current: ContextVar[StepUp | None] = ContextVar("step_up", default=None)

CODE_LABEL = "Confirm with your authenticator code"


def _page_step_up(request: HttpRequest) -> StepUp:
    user = request.user
    enrolled = factors.has_second_factor(user)
    # A recent check counts whatever it was (a code here, or the identity provider's second
    # factor at single sign-on, which records it too).
    if is_recent(factors.second_factor_at(request)):
        return StepUp(ok=True, enrolled=enrolled)
    state = StepUp(
        ok=False, enrolled=enrolled, posted=request.method == "POST", key=enrolled and factors.has_security_key(user)
    )
    if state.posted and enrolled:
        _check_posted(request, state)
    return state


def _check_posted(request: HttpRequest, state: StepUp) -> None:
    """The security key's answer or the code posted with the protected form: a good one is
    recorded and opens the action; a wrong one is an error on the field (and counted)."""
    credential = request.POST.get(KEY_FIELD, "").strip() if state.key else ""
    if credential:
        authenticator, error = factors.verify_key(request.user, credential, request=request), WRONG_KEY
    elif CODE_FIELD not in request.POST:
        return
    elif not (code := request.POST[CODE_FIELD].strip()):
        state.error = NO_CODE_OR_KEY if state.key else NO_CODE
        return
    else:
        authenticator, error = factors.verify_code(request.user, code, request=request), WRONG_CODE
    if authenticator is None:
        state.error = error
        return
    factors.record_second_factor(request, method=METHOD, authenticator=authenticator)
    state.ok = True


def _api_step_up(request) -> StepUp:
    user = request.user
    enrolled = factors.has_second_factor(user)
    token = request.auth
    if token is None:  # a browser session using the API: the session's check
        checked_at = factors.second_factor_at(request._request)
    else:
        checked_at = TokenSecondFactor.checked_at_for(token)
    return StepUp(ok=is_recent(checked_at), enrolled=enrolled)


@contextmanager
def guard(request: HttpRequest):
    """Within this block the request is a protected one: ``request.step_up`` is set (a posted
    code checked first) and forms built meanwhile with ``StepUpFormMixin`` carry the code field."""
    request.step_up = _page_step_up(request)
    token = _current.set(request.step_up)
    try:
        yield request.step_up
    finally:
        _current.reset(token)


def step_up_required(view):
    """Mark a page view as one that acts only after a recent second-factor check; the view
    finds ``request.step_up`` (a ``StepUp``) and acts only when ``request.step_up.ok``."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with guard(request):
            return view(request, *args, **kwargs)

    wrapped.step_up_required = True
    return wrapped


def api_step_up_required(method):
    """The same for an API view method: ``request.step_up.demand()`` where it would act."""

    @wraps(method)
    def wrapped(self, request, *args, **kwargs):
        request.step_up = _api_step_up(request)
        return method(self, request, *args, **kwargs)

    wrapped.step_up_required = True
    return wrapped


def confirm_page(request: HttpRequest, *, what: str, cancel_url: str) -> HttpResponse:
    """For a protected action posted by a single button: what it does, the code field, and the
    posted values carried to the same address (the code itself is never carried)."""
    carried = [
        (name, value)
        for name, values in request.POST.lists()
        if name not in ("csrfmiddlewaretoken", CODE_FIELD, KEY_FIELD)
        for value in values
    ]
    context = {"what": what, "cancel_url": cancel_url, "carried": carried, "action": request.path}
    return render(request, "accounts/step_up_confirm.html", context)


class StepUpCodeField(forms.CharField):
    """The code field of a form whose request needs a step-up: the code itself was checked by
    ``guard`` before the view ran; the field only makes the form invalid until it passed."""

    def __init__(self, step_up: StepUp, **kwargs) -> None:
        attrs = {"inputmode": "numeric", "autocomplete": "one-time-code", "spellcheck": "false"}
        if step_up.posted:
            attrs["autofocus"] = True
        help_text = (
            f"This change needs a second-factor check within the last {step_up.minutes} minutes: enter the "
            "code your authenticator app shows now (or an unused recovery code); the change is saved with it."
        )
        if step_up.key:
            help_text += ' A security key works too: "Use a security key instead".'
        if not step_up.enrolled:
            help_text = (
                "This change needs a second factor, and your account has none: set up an authenticator app "
                "or a security key."
            )
        widget = forms.TextInput(attrs)
        super().__init__(label=CODE_LABEL, required=False, max_length=64, help_text=help_text, widget=widget, **kwargs)
        self.step_up = step_up

    def clean(self, value):
        if not self.step_up.ok:
            if not self.step_up.enrolled:
                raise ValidationError("You need an enrolled second factor for this change.", code=STEP_UP_CODE)
            message = self.step_up.error or NO_CODE
            raise ValidationError(message, code=STEP_UP_CODE)
        return ""


class StepUpFormMixin:
    """A form that, built within ``guard`` while the check is too old, carries the code field
    (``step_up_code``) and is invalid until a code passed: the page re-renders it, typed values kept."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        step_up = _current.get()
        if step_up is not None and not step_up.ok:
            self.fields[CODE_FIELD] = StepUpCodeField(step_up)


def needs_code_field() -> bool:
    """True within ``guard`` while the check is too old (a form being built will carry the field)."""
    step_up = _current.get()
    return step_up is not None and not step_up.ok


class StepUpAdminMixin:
    """A ModelAdmin whose every change (add, change, delete, admin actions) needs a recent
    second-factor check. The add and change forms carry the code field (rendered by
    ``admin/_step_up_field.html``); a delete or an action posted while the check is too old gets
    ``confirm_page`` with the selection carried."""

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        with guard(request):
            return super().changeform_view(request, object_id, form_url, extra_context)

    def changelist_view(self, request, extra_context=None):
        with guard(request):
            return super().changelist_view(request, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        with guard(request):
            if request.method == "POST" and not request.step_up.ok:
                what = f"Delete {self.opts.verbose_name} {object_id}."
                return confirm_page(request, what=what, cancel_url=request.path)
            return super().delete_view(request, object_id, extra_context)

    def response_action(self, request, queryset):
        if not request.step_up.ok:
            what = _action_label(self, request, request.POST.get("action", ""))
            return confirm_page(request, what=what, cancel_url=request.path)
        return super().response_action(request, queryset)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if needs_code_field() and not issubclass(form, StepUpFormMixin):
            form = type(form.__name__, (StepUpFormMixin, form), {})
        return form


def _action_label(model_admin, request, name: str) -> str:
    labels = dict(model_admin.get_action_choices(request, default_choices=[]))
    count = len(request.POST.getlist("_selected_action"))
    return f"{labels.get(name, name)} ({count} selected)."
