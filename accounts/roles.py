"""Roles are Django Groups. The names are part of the product; never rename them."""

from collections.abc import Iterable

from django.db import models


class Role(models.TextChoices):
    INVESTIGATOR = "investigator", "Investigator"
    LEGAL_REVIEWER = "legal_reviewer", "Legal reviewer"
    SENIOR_LEGAL_REVIEWER = "senior_legal_reviewer", "Senior legal reviewer"
    AUDITOR = "auditor", "Auditor"


ALL_ROLES = [role.value for role in Role]
REVIEWER_ROLES = {Role.LEGAL_REVIEWER.value, Role.SENIOR_LEGAL_REVIEWER.value}

# Separation of duties: whoever investigates never approves, and whoever audits does neither.
# A small organisation gives the second role to a second person, never to the same one.
INVESTIGATING_ROLES = frozenset({Role.INVESTIGATOR.value})
APPROVING_ROLES = frozenset(REVIEWER_ROLES)
AUDITING_ROLES = frozenset({Role.AUDITOR.value})


def _labels(roles: Iterable[str]) -> str:
    return " or ".join(Role(role).label.lower() for role in sorted(roles))


def role_conflicts(roles: Iterable[str]) -> list[str]:
    """What in ``roles`` breaks the separation of duties, as sentences for the person setting them."""
    held = frozenset(str(role) for role in roles)
    conflicts = []
    if held & INVESTIGATING_ROLES and held & APPROVING_ROLES:
        conflicts.append(
            f"The investigator role cannot be combined with {_labels(held & APPROVING_ROLES)}: "
            "whoever investigates never approves. Give that role to a second person."
        )
    if held & AUDITING_ROLES and held & (INVESTIGATING_ROLES | APPROVING_ROLES):
        conflicts.append(
            f"The auditor role cannot be combined with {_labels(held & (INVESTIGATING_ROLES | APPROVING_ROLES))}: "
            "whoever audits neither investigates nor approves. Give that role to a second person."
        )
    return conflicts
