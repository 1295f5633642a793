"""API permission of accounts (kept apart from the API views: DRF imports it from its settings)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from . import factors
from .models import TokenSecondFactor


class SecondFactorEnrolled(BasePermission):
    """Refuses every call of a user whose role needs a second factor and who has none yet
    (403 ``second_factor_required``), unless the second factor was the identity provider's: a
    browser session whose sign-on asserted one, or a token issued from such a session
    (``/accounts/api-token/``, marked as obtained with a second factor). A token obtained without
    one (before the role needed it) stays refused, and is revoked when a factor is enrolled."""

    message = factors.ENROLMENT_REQUIRED_MESSAGE
    code = factors.ENROLMENT_REQUIRED_CODE

    def has_permission(self, request: Request, view) -> bool:
        if not factors.enrolment_missing(request.user):
            return True
        if request.auth is None:
            return factors.asserted_by_provider(request._request)
        return TokenSecondFactor.objects.filter(token=request.auth).exists()
