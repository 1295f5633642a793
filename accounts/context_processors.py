"""Navigation by role, computed once per request so templates only read flags."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse

from .roles import Role

STAFF = "staff"
REVIEWERS = (Role.LEGAL_REVIEWER, Role.SENIOR_LEGAL_REVIEWER)

# (roles or "staff", label, url name). Entries whose url does not exist yet are skipped, so
# pages other branches add appear here as soon as their url is routed.
NAVIGATION = [
    ((Role.INVESTIGATOR,), "My cases", "investigations:case_list"),
    ((Role.INVESTIGATOR,), "New case", "investigations:case_create"),
    ((Role.INVESTIGATOR,), "My grants", "investigations:grant_list"),
    (REVIEWERS, "Review queue", "investigations:review_queue"),
    (REVIEWERS, "Cases to approve", "investigations:case_queue"),
    (REVIEWERS, "Decisions", "investigations:decision_list"),
    ((Role.AUDITOR,), "Audit trail", "audit:event_list"),
    ((Role.AUDITOR,), "Verification", "audit:verification"),
    ((Role.AUDITOR,), "Alerts", "investigations:alert_list"),
    ((Role.AUDITOR,), "Scope reports", "investigations:report_list"),
    ((Role.AUDITOR,), "Transparency", "investigations:transparency"),
    ((Role.SENIOR_LEGAL_REVIEWER,), "Protected subjects", "investigations:protected_list"),
    (STAFF, "Users", "admin:accounts_user_changelist"),
    (STAFF, "Lockouts", "admin:axes_accessattempt_changelist"),
    (STAFF, "Protected subjects", "admin:investigations_protectedsubject_changelist"),
    (STAFF, "Schedules", "operations:schedules"),
    (STAFF, "Case templates", "investigations:case_template_list"),
    (STAFF, "Admin", "admin:index"),
]


def _allowed(user, roles) -> bool:
    if roles == STAFF:
        return user.is_staff and user.is_active
    return any(user.has_role(role) for role in roles)


def nav_items_for(user, path: str = "") -> list[dict]:
    """The navigation entries ``user`` sees; the one for ``path`` is marked current."""
    items, seen = [], set()
    for roles, label, url_name in NAVIGATION:
        if label in seen or not _allowed(user, roles):
            continue
        items.append({"label": label, "url": reverse(url_name), "current": False})
        seen.add(label)
    # The longest url that the path starts with is the current page ("/cases/new/" beats "/cases/").
    matches = [item for item in items if path.startswith(item["url"])]
    if matches:
        max(matches, key=lambda item: len(item["url"]))["current"] = True
    return items


def role_labels(user) -> list[str]:
    labels = dict(Role.choices)
    names = [labels.get(name, name) for name in user.roles_sorted]
    return [*names, "Administrator"] if user.is_staff else names


def navigation(request) -> dict:
    context = {"nav_items": [], "role_labels": [], "custos_version": settings.CUSTOS_VERSION}
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return context
    context["nav_items"] = nav_items_for(user, request.path)
    context["role_labels"] = role_labels(user)
    return context
