"""API permission of accounts (kept apart from the API views: DRF imports it from its settings)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from . import factors


class SecondFactorEnrolled(BasePermission):
    """Refuses every call of a user whose role needs a second factor and who has none yet
    (403 ``second_factor_required``)."""

    message = factors.ENROLMENT_REQUIRED_MESSAGE
    code = factors.ENROLMENT_REQUIRED_CODE

    def has_permission(self, request: Request, view) -> bool:
        return not factors.enrolment_missing(request.user)
