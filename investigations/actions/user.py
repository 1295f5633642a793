"""Deactivating a user: leaving revokes (invariant 8)."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db import transaction
from guardian.models import UserObjectPermission

import audit
from accounts.models import User
from audit.events import Action

from ..models import (
    CaseUserObjectPermission,
    Grant,
    GrantUserObjectPermission,
    RequestUserObjectPermission,
)
from .grant import grants_leave
from .locks import locked

DIRECT_PERMISSION_MODELS = (
    CaseUserObjectPermission,
    RequestUserObjectPermission,
    GrantUserObjectPermission,
    UserObjectPermission,
)


def user_deactivate(*, actor: User | None, user: User, reason: str = "The user was deactivated.") -> User:
    """Deactivate ``user`` (staff only): they can no longer log in or hold anything.

    Active grants where they are the only grantee are revoked; from the others they are
    removed. All their object permissions are deleted. One transaction, each step audited.
    """
    if actor is not None and not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Only administrators deactivate users.")
    if actor is not None and actor.pk == user.pk:
        raise PermissionDenied("You cannot deactivate yourself.")
    with transaction.atomic():
        user = locked(User.objects).get(pk=user.pk)
        revoked, removed = grants_leave(actor=actor, user=user, grants=Grant.objects.all(), reason=reason)
        permissions = _delete_object_permissions(user)
        was_active = user.is_active
        user.is_active = False
        user.save(update_fields=["is_active"])
        user.__dict__.pop("role_names", None)
        audit.record(
            action=Action.USER_DEACTIVATED,
            actor=actor,
            target=user,
            details={
                "username": user.username,
                "was_active": was_active,
                "grants_revoked": revoked,
                "grants_left": removed,
                "object_permissions_removed": permissions,
            },
        )
    return user


def _delete_object_permissions(user: User) -> int:
    deleted = 0
    for model in DIRECT_PERMISSION_MODELS:
        count, _ = model.objects.filter(user=user).delete()
        deleted += count
    return deleted
