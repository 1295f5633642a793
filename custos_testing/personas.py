"""Personas: users made through ``accounts.actions``, the way an administrator makes them.

A persona whose role needs a second factor is enrolled with an authenticator app whose secret
is known to the tests (``persona_secret``), so that a test can sign in as it for real.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence

from accounts.actions import user_create
from accounts.factors import second_factor_required
from accounts.models import User
from accounts.roles import Role

PASSWORD = "a-long-test-password-42"


def persona_secret(username: str) -> str:
    """The TOTP secret of a persona whose role needs a second factor (known to the tests, one
    per persona so that sign-ins of different personas never wait for a fresh code)."""
    return base64.b32encode(hashlib.sha256(f"custos-test-{username}".encode()).digest()[:20]).decode()


def enrol_totp(user: User) -> str:
    """Give ``user`` an authenticator app with the persona's known secret; the secret."""
    from accounts.actions import second_factor_enrol_totp

    secret = persona_secret(user.username)
    second_factor_enrol_totp(actor=None, user=user, secret=secret)
    return secret


def make_user(
    username: str, roles: Sequence[str] = (), *, is_staff: bool = False, enrolled: bool | None = None, **extra
) -> User:
    """A persona. One whose role needs a second factor is enrolled (an authenticator app with
    ``persona_secret(username)``) unless ``enrolled=False``."""
    # A transactional test's flush empties the tables, role groups (made by a data migration)
    # included; put them back so that every persona really holds its roles.
    from django.contrib.auth.models import Group

    for role in Role:
        Group.objects.get_or_create(name=str(role))
    user = user_create(
        actor=None,
        username=username,
        password=PASSWORD,
        email=f"{username}@example.org",
        roles=roles,
        is_staff=is_staff,
        validate=False,
    )
    if extra:
        for field, value in extra.items():
            setattr(user, field, value)
        user.save(update_fields=list(extra))
    if enrolled is None:
        enrolled = second_factor_required(user)
    if enrolled:
        enrol_totp(user)
    return user
