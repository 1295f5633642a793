"""State changes of users and roles. Each writes its ledger entry in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.actions import Action

from .models import User
from .roles import ALL_ROLES, role_conflicts


class UnknownRoleError(ValueError):
    pass


def _check_roles(roles: Iterable[str]) -> list[str]:
    """The roles, sorted, if they exist and respect the separation of duties.

    A combination that breaks the separation raises ``ValidationError({"roles": ...})``; there
    is no way around it, for anyone: roles are set only here.
    """
    roles = sorted({str(role) for role in roles})
    unknown = [role for role in roles if role not in ALL_ROLES]
    if unknown:
        raise UnknownRoleError(f"unknown role(s): {', '.join(unknown)}; known: {', '.join(ALL_ROLES)}")
    if conflicts := role_conflicts(roles):
        raise ValidationError({"roles": conflicts})
    return roles


def user_create(
    *,
    actor: User | None,
    username: str,
    password: str,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    roles: Iterable[str] = (),
    is_staff: bool = False,
    validate: bool = True,
) -> User:
    """Create a user with the given roles (Groups). Never creates a superuser."""
    roles = _check_roles(roles)
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_staff=is_staff)
    user.full_clean(exclude=["password"])
    if validate:
        validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        user.groups.set(Group.objects.filter(name__in=roles))
        audit.record(
            action=Action.USER_CREATED,
            actor=actor,
            target=user,
            details={"username": username, "roles": roles, "is_staff": is_staff},
        )
    return user


def user_set_roles(*, actor: User | None, user: User, roles: Iterable[str]) -> User:
    """Replace a user's roles."""
    roles = _check_roles(roles)
    with transaction.atomic():
        before = sorted(user.groups.values_list("name", flat=True))
        user.groups.set(Group.objects.filter(name__in=roles))
        user.__dict__.pop("role_names", None)
        audit.record(
            action=Action.USER_ROLES_CHANGED,
            actor=actor,
            target=user,
            details={"before": before, "after": roles},
        )
    return user


def user_set_password(*, actor: User | None, user: User, password: str, validate: bool = True) -> User:
    """Set (or reset) a user's password and end every session and API token they hold.

    Whoever set it, the person at the keyboard with the old password (or with a session or
    token obtained before) is out: an administrator resetting a password cannot leave the
    old holder logged in, and a user changing theirs ends any session an intruder had. A
    password the validators refuse raises ``ValidationError({"password": ...})`` and
    changes nothing.
    """
    if validate:
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise ValidationError({"password": error.messages}) from error
    with transaction.atomic():
        user.set_password(password)
        user.save(update_fields=["password"])
        sessions = _end_sessions(user)
        tokens, _ = user.auth_token_set.all().delete()
        audit.record(
            action=Action.USER_PASSWORD_CHANGED,
            actor=actor,
            target=user,
            details={
                "by_self": actor is not None and actor.pk == user.pk,
                "sessions_ended": sessions,
                "tokens_revoked": tokens,
            },
        )
    return user


def _end_sessions(user: User) -> int:
    """Delete the user's live sessions. Sessions are keyed by a random id, not by user, so the
    live ones are decoded (a few per person, ``SESSION_COOKIE_AGE`` hours at most)."""
    mine = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    deleted, _ = Session.objects.filter(pk__in=mine).delete()
    return deleted
