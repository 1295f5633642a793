"""What every page shows auditors: how many oversight alerts are still open."""

from __future__ import annotations

from audit.access import is_auditor

from .models import Alert


def oversight(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not is_auditor(user):
        return {}
    return {"open_alert_count": Alert.objects.open().count()}
