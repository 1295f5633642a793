"""Navigation by role, computed once per request so templates only read flags."""

from __future__ import annotations

from django.conf import settings
from django.urls import NoReverseMatch, reverse

from .roles import Role

# (role or "staff", label, url name). Entries whose url does not exist yet are skipped.
NAVIGATION = [
    (Role.INVESTIGATOR, "My cases", "investigations:case_list"),
    (Role.INVESTIGATOR, "New case", "investigations:case_create"),
    (Role.INVESTIGATOR, "My grants", "investigations:grant_list"),
    (Role.LEGAL_REVIEWER, "Cases to approve", "investigations:case_queue"),
    (Role.SENIOR_LEGAL_REVIEWER, "Cases to approve", "investigations:case_queue"),
    (Role.LEGAL_REVIEWER, "Review queue", "investigations:review_queue"),
    (Role.SENIOR_LEGAL_REVIEWER, "Review queue", "investigations:review_queue"),
    (Role.SENIOR_LEGAL_REVIEWER, "Protected subjects", "investigations:protected_list"),
    (Role.AUDITOR, "Audit trail", "audit:event_list"),
    (Role.AUDITOR, "Verification", "audit:verification"),
    ("staff", "Schedules", "operations:schedules"),
    (Role.AUDITOR, "Alerts", "investigations:alert_list"),
    (Role.AUDITOR, "Scope reports", "investigations:report_list"),
    ("staff", "Admin", "admin:index"),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": [], "custos_version": settings.CUSTOS_VERSION}
    items, seen = [], set()
    for role, label, url_name in NAVIGATION:
        allowed = user.is_staff if role == "staff" else user.has_role(role)
        if not allowed or label in seen:
            continue
        try:
            items.append({"label": label, "url": reverse(url_name)})
        except NoReverseMatch:
            continue
        seen.add(label)
    return {"nav_items": items, "custos_version": settings.CUSTOS_VERSION}
