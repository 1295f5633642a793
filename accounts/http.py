"""Request types for views that only a signed-in user reaches (for the type checker).

``SessionAwareLoginRequiredMiddleware`` sends every anonymous request to the login page unless
its view is marked ``login_not_required``, and the API's authentication classes refuse an
anonymous caller; so behind them ``request.user`` is always a ``User``. Annotating a view's
request with these types says so to mypy; they change nothing at run time (Django and DRF
still pass their own request objects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.http import HttpRequest
from rest_framework.request import Request

from .models import User

if TYPE_CHECKING:
    from .stepup import StepUp


class SignedInRequest(HttpRequest):
    """A Django request whose view requires a signed-in user."""

    user: User
    step_up: StepUp  # set by ``@step_up_required`` (accounts/stepup.py), on the views it wraps only


class SignedInAPIRequest(Request):
    """A DRF request whose view requires an authenticated caller."""

    user: User
    step_up: StepUp  # set by ``@api_step_up_required`` (accounts/stepup.py), on the views it wraps only
