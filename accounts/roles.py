"""Roles are Django Groups. The names are part of the product; never rename them."""

from django.db import models


class Role(models.TextChoices):
    INVESTIGATOR = "investigator", "Investigator"
    LEGAL_REVIEWER = "legal_reviewer", "Legal reviewer"
    SENIOR_LEGAL_REVIEWER = "senior_legal_reviewer", "Senior legal reviewer"
    AUDITOR = "auditor", "Auditor"


ALL_ROLES = [role.value for role in Role]
REVIEWER_ROLES = {Role.LEGAL_REVIEWER.value, Role.SENIOR_LEGAL_REVIEWER.value}
