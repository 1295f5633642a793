"""Who may read the audit trail: the one chokepoint.

Only active members of the ``auditor`` group. Everyone else, superusers and staff
included, gets 404: the pages do not reveal that they exist.
"""

from __future__ import annotations

from django.http import Http404

AUDITOR_GROUP = "auditor"


def is_auditor(user) -> bool:
    # The role is defined once, on the user (``User.is_auditor``: an active member of the group).
    return user is not None and user.is_authenticated and user.is_auditor


def require_auditor(user) -> None:
    """Raise 404 unless ``user`` is an active auditor."""
    if not is_auditor(user):
        raise Http404
