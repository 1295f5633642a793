"""State changes of users and roles. Each writes its ledger entry in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable

from allauth.socialaccount.models import SocialAccount
from axes.utils import reset as axes_reset
from django.contrib.auth.models import Group
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from knox.models import AuthToken

import audit
from audit.events import Action

from .lockout import username_key
from .models import SecondFactorReset, TokenSecondFactor, User
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


def _role_groups(roles: list[str]) -> list[Group]:
    """The groups that hold ``roles`` (checked names). A role's group is made by a migration; one
    deleted since (in the admin, or a test database flushed) is made again, so that a role given
    is never silently dropped."""
    return [Group.objects.get_or_create(name=role)[0] for role in roles]


def user_create(
    *,
    actor: User | None,
    username: str,
    password: str | None,
    email: str = "",
    first_name: str = "",
    last_name: str = "",
    roles: Iterable[str] = (),
    is_staff: bool = False,
    validate: bool = True,
) -> User:
    """Create a user with the given roles (Groups). Never creates a superuser (``user_set_privileges`` does).

    ``password=None`` makes a user who cannot log in with a password until one is set.
    """
    roles = _check_roles(roles)
    user = User(username=username, email=email, first_name=first_name, last_name=last_name, is_staff=is_staff)
    user.full_clean(exclude=["password"])
    if validate and password is not None:
        validate_password(password, user)
    with transaction.atomic():
        user.set_password(password)
        user.save()
        user.groups.set(_role_groups(roles))
        audit.record(
            action=Action.USER_CREATED,
            actor=actor,
            target=user,
            details={"username": username, "roles": roles, "is_staff": is_staff},
        )
    return user


def user_set_roles(*, actor: User | None, user: User, roles: Iterable[str], source: str = "") -> User:
    """Replace a user's roles. ``source="sso"``: the identity provider's claim set them (at
    sign-in, ``accounts.sso``), which the ledger says."""
    roles = _check_roles(roles)
    with transaction.atomic():
        before = sorted(user.groups.values_list("name", flat=True))
        user.groups.set(_role_groups(roles))
        user.__dict__.pop("role_names", None)
        audit.record(
            action=Action.USER_ROLES_CHANGED,
            actor=actor,
            target=user,
            details={"before": before, "after": roles} | ({"source": source} if source else {}),
        )
    return user


def user_set_password(*, actor: User | None, user: User, password: str | None, validate: bool = True) -> User:
    """Set (or reset) a user's password and end every session and API token they hold.

    Whoever set it, the person at the keyboard with the old password (or with a session or
    token obtained before) is out: an administrator resetting a password cannot leave the
    old holder logged in, and a user changing theirs ends any session an intruder had. A
    password the validators refuse raises ``ValidationError({"password": ...})`` and
    changes nothing. ``password=None`` disables password login altogether.
    """
    if validate and password is not None:
        try:
            validate_password(password, user)
        except ValidationError as error:
            raise ValidationError({"password": error.messages}) from error
    with transaction.atomic():
        if password is None:
            user.set_unusable_password()
        else:
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
                "password_login": password is not None,
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


PROFILE_FIELDS = ("username", "first_name", "last_name", "email", "time_zone")
PRIVILEGES = ("is_staff", "is_superuser")


def user_update(*, actor: User | None, user: User, **changes: str) -> User:
    """Change a user's username, name, email or time zone (``PROFILE_FIELDS``); the ledger keeps before and after.

    An invalid or taken username raises ``ValidationError`` with the field's error and
    changes nothing. Roles, privileges, activity and the password have their own actions.
    """
    if unknown := set(changes) - set(PROFILE_FIELDS):
        raise TypeError(f"user_update changes only {', '.join(PROFILE_FIELDS)}, not {', '.join(sorted(unknown))}")
    changed = {field: [getattr(user, field), new] for field, new in changes.items() if getattr(user, field) != new}
    if not changed:
        return user
    for field, (_, value) in changed.items():
        setattr(user, field, value)
    try:
        user.full_clean(exclude=["password"])
    except ValidationError:
        user.refresh_from_db(fields=list(changed))
        raise
    with transaction.atomic():
        user.save(update_fields=list(changed))
        audit.record(action=Action.USER_UPDATED, actor=actor, target=user, details={"changes": changed})
    return user


def user_set_privileges(*, actor: User | None, user: User, is_staff: bool, is_superuser: bool | None = None) -> User:
    """Grant or withdraw staff (the admin site) and superuser status.

    Granting either is how someone comes to change who may do what, so the event names what
    was granted and the oversight scan raises an alert on it (accounts cannot reach the
    alerts; the ledger is the contract, as for every other alert).
    """
    after = {"is_staff": is_staff, "is_superuser": user.is_superuser if is_superuser is None else is_superuser}
    before = {field: getattr(user, field) for field in PRIVILEGES}
    if after == before:
        return user
    with transaction.atomic():
        for field, value in after.items():
            setattr(user, field, value)
        user.save(update_fields=list(PRIVILEGES))
        audit.record(
            action=Action.USER_PRIVILEGES_CHANGED,
            actor=actor,
            target=user,
            details={
                "username": user.username,
                "before": before,
                "after": after,
                "granted": [field for field in PRIVILEGES if after[field] and not before[field]],
                "withdrawn": [field for field in PRIVILEGES if before[field] and not after[field]],
            },
        )
    return user


def user_reactivate(*, actor: User | None, user: User) -> User:
    """Let a deactivated user log in again. Nothing they held comes back: deactivation removed
    their grants and object permissions for good. Refused while they hold roles that break
    the separation of duties (a row from before the rule)."""
    if conflicts := role_conflicts(user.groups.values_list("name", flat=True)):
        raise ValidationError({"is_active": conflicts})
    if user.is_active:
        return user
    with transaction.atomic():
        user.is_active = True
        user.save(update_fields=["is_active"])
        user.__dict__.pop("role_names", None)
        audit.record(action=Action.USER_REACTIVATED, actor=actor, target=user, details={"username": user.username})
    return user


def api_token_revoke(*, actor: User | None, token: AuthToken) -> None:
    """Revoke one API token of someone (the holder is told by a 401 on their next call)."""
    with transaction.atomic():
        owner, key = token.user, token.token_key
        token.delete()
        audit.record(
            action=Action.API_TOKEN_REVOKED,
            actor=actor,
            target=owner,
            details={"token_key": key, "by_self": actor is not None and actor.pk == owner.pk},
        )


def api_token_second_factor(*, actor: User, token: AuthToken, method: str, request=None) -> TokenSecondFactor:
    """Record that ``token`` passed a second factor now (``method``: ``token`` when it was issued
    with a code, ``step_up`` when stepped up later): for ``CUSTOS_STEP_UP_MINUTES`` it may act on
    the endpoints that need a recent check. The code itself was checked by the caller."""
    with transaction.atomic():
        record, _ = TokenSecondFactor.objects.update_or_create(token=token, defaults={"checked_at": timezone.now()})
        audit.record(
            action=Action.AUTH_SECOND_FACTOR_PASSED,
            actor=actor,
            target=actor,
            details={"method": method, "token_key": token.token_key},
            request=request,
        )
    return record


class TokenLimitReached(ValidationError):
    pass


def token_limit_reached(user: User) -> bool:
    """``user`` holds ``TOKEN_LIMIT_PER_USER`` live API tokens already (the password endpoint and
    the token page both refuse another)."""
    from knox.settings import knox_settings

    limit = knox_settings.TOKEN_LIMIT_PER_USER
    return limit is not None and user.auth_token_set.filter(expiry__gt=timezone.now()).count() >= limit


def api_token_issue(*, actor: User, second_factor_at, via: str, request=None) -> tuple[AuthToken, str]:
    """Issue an API token to ``actor`` from a signed-in session whose second factor was checked
    at ``second_factor_at`` (recent: the caller checked it; ``via``: where, e.g. ``page``).

    For users who sign in through single sign-on and have no password for the token endpoint.
    The token is marked as obtained with a second factor as of that check (not later: the
    step-up window is the session's, not extended). Refused past ``TOKEN_LIMIT_PER_USER`` live
    tokens. ``api_token.issued`` names the token's key, never the token. Returns the token row
    and the token itself (shown once; only its digest is stored).
    """
    from knox.settings import knox_settings

    with transaction.atomic():
        User.objects.select_for_update().get(pk=actor.pk)  # the limit, counted one issue at a time
        if token_limit_reached(actor):
            raise TokenLimitReached("Too many live tokens: revoke one first (log out with it).", code="token_limit")
        instance, token = AuthToken.objects.create(user=actor, expiry=knox_settings.TOKEN_TTL)
        TokenSecondFactor.objects.create(token=instance, checked_at=second_factor_at)
        audit.record(
            action=Action.API_TOKEN_ISSUED,
            actor=actor,
            target=actor,
            details={
                "token_key": instance.token_key,
                "via": via,
                "expiry": instance.expiry.isoformat() if instance.expiry else None,
                "second_factor_at": second_factor_at.isoformat(),
            },
            request=request,
        )
    return instance, token


# Why tokens end with a change of factor (the ``reason`` of their ``api_token.revoked`` events).
FACTOR_ADDED, FACTOR_REMOVED = "factor_added", "factor_removed"


def _revoke_tokens(*, actor: User | None, user: User, tokens, reason: str, request=None) -> int:
    """Revoke ``tokens`` of ``user``, one ``api_token.revoked`` event each with ``reason``."""
    revoked = 0
    for token in list(tokens.select_for_update(of=("self",))):
        key = token.token_key
        token.delete()
        revoked += 1
        audit.record(
            action=Action.API_TOKEN_REVOKED,
            actor=actor,
            target=user,
            details={"token_key": key, "by_self": actor is not None and actor.pk == user.pk, "reason": reason},
            request=request,
        )
    return revoked


def tokens_without_second_factor(user: User):
    """The user's API tokens that never passed a second factor (obtained with the password alone,
    before the user had one, and never stepped up)."""
    return user.auth_token_set.filter(second_factor__isnull=True)


def second_factors_changed(*, user: User, added: Iterable, removed: Iterable, request=None) -> int:
    """Record what ``user`` changed of their own second factors (allauth's pages, through
    ``accounts.factor_pages``, inside the page's transaction) and revoke the tokens it makes stale.

    - Recovery codes replaced by new ones: ``auth.recovery_codes_generated``; any other
      authenticator added or removed: ``auth.factor_added`` / ``auth.factor_removed``.
    - An authenticator app or security key added (an enrolment): every API token of the user
      that never passed a second factor is revoked. It was obtained with the password alone,
      which no longer signs this user in, so it must not outlive the enrolment.
    - One removed: every API token of the user is revoked. The removed factor may be the lost
      one, and which factor a token's code came from is not kept.

    Returns how many tokens were revoked.
    """
    from allauth.mfa.models import Authenticator

    from .factors import FACTOR_TYPES

    added, removed = list(added), list(removed)
    codes = Authenticator.Type.RECOVERY_CODES
    regenerated = any(item.type == codes for item in added) and any(item.type == codes for item in removed)
    with transaction.atomic():
        for item in removed:
            if not (regenerated and item.type == codes):
                _record_factor(Action.AUTH_FACTOR_REMOVED, user, item, request)
        for item in added:
            replaced = regenerated and item.type == codes
            _record_factor(
                Action.AUTH_RECOVERY_CODES_GENERATED if replaced else Action.AUTH_FACTOR_ADDED, user, item, request
            )
        if any(item.type in FACTOR_TYPES for item in removed):
            tokens, reason = user.auth_token_set.all(), FACTOR_REMOVED
        elif any(item.type in FACTOR_TYPES for item in added):
            tokens, reason = tokens_without_second_factor(user), FACTOR_ADDED
        else:
            return 0
        return _revoke_tokens(actor=user, user=user, tokens=tokens, reason=reason, request=request)


def _record_factor(action: Action, user: User, authenticator, request) -> None:
    audit.record(
        action=action,
        actor=user,
        target=user,
        details={"type": authenticator.type, "authenticator": authenticator.pk},
        request=request,
    )


def recovery_codes_viewed(*, user: User, authenticator, how: str, request=None) -> None:
    """Record that ``user``'s recovery codes were shown (``how``: ``page`` or ``download``):
    whoever reads them can sign in in place of the owner's authenticator. Never the codes."""
    details = {"how": how, "authenticator": authenticator.pk if authenticator else None}
    if authenticator is not None:
        details["unused"] = len(authenticator.wrap().get_unused_codes())
    with transaction.atomic():
        audit.record(
            action=Action.AUTH_RECOVERY_CODES_VIEWED, actor=user, target=user, details=details, request=request
        )


def lockout_clear(*, actor: User, username: str = "", address: str = "") -> int:
    """Lift a sign-in lockout before its cool-off ends: forget the failed attempts recorded
    for ``username`` (any address) and/or from ``address`` (any username). Returns how many
    attempt records were removed; the ledger entry is written even when there were none, so
    that every unlock an administrator asked for is on the record."""
    username = username_key(username)
    if not username and not address:
        raise ValueError("name a username or an address to unlock")
    with transaction.atomic():
        removed = 0
        if username:
            removed += axes_reset(username=username)
        if address:
            removed += axes_reset(ip=address)
        audit.record(
            action=Action.AUTH_LOCKOUT_CLEARED,
            actor=actor,
            target=User.objects.filter(username__iexact=username).first() if username else None,
            details={"username": username, "address": address, "attempts_removed": removed},
        )
    return removed


# --- single sign-on identities (accounts.sso) -------------------------------------------------


def user_create_from_sso(
    *, provider: str, sub: str, username: str, email: str, first_name: str, last_name: str, roles: Iterable[str]
) -> User:
    """Create a user for an identity provider's ``sub`` seen for the first time (just-in-time):
    no password (they sign in through the provider), the given roles, linked to ``sub``. One
    transaction: ``user.created`` and ``user.sso_linked``. A username or e-mail the user rules
    refuse raises ``ValidationError`` and creates nothing."""
    with transaction.atomic():
        user = user_create(
            actor=None,
            username=username,
            password=None,
            email=email,
            first_name=first_name,
            last_name=last_name,
            roles=roles,
        )
        _link(actor=None, user=user, provider=provider, sub=sub, created=True)
    return user


def user_link_sso(*, actor: User | None, user: User, provider: str, sub: str) -> SocialAccount:
    """Link an existing user to an identity provider's ``sub`` (pre-provisioning: staff know
    who the provider's subject is). Their next sign-in through the provider is theirs. A ``sub``
    already linked to someone, or a user already linked, raises ``ValidationError``."""
    if SocialAccount.objects.filter(provider=provider, uid=sub).exists():
        raise ValidationError({"sub": "This sign-on identity is already linked to a user."})
    if SocialAccount.objects.filter(provider=provider, user=user).exists():
        raise ValidationError({"user": "This user is already linked to a sign-on identity; unlink it first."})
    with transaction.atomic():
        return _link(actor=actor, user=user, provider=provider, sub=sub, created=False)


def user_unlink_sso(*, actor: User | None, user: User, provider: str) -> int:
    """Remove the user's link to the identity provider: their next sign-in there is refused
    (or, with just-in-time users on, makes a new user). Returns how many links were removed."""
    with transaction.atomic():
        subs = list(SocialAccount.objects.filter(provider=provider, user=user).values_list("uid", flat=True))
        SocialAccount.objects.filter(provider=provider, user=user).delete()
        audit.record(
            action=Action.USER_SSO_UNLINKED,
            actor=actor,
            target=user,
            details={"username": user.username, "provider": provider, "subs": subs},
        )
    return len(subs)


def _link(*, actor: User | None, user: User, provider: str, sub: str, created: bool) -> SocialAccount:
    account = SocialAccount.objects.create(user=user, provider=provider, uid=sub)
    audit.record(
        action=Action.USER_SSO_LINKED,
        actor=actor,
        target=user,
        details={"username": user.username, "provider": provider, "sub": sub, "created": created},
    )
    return account
def second_factor_enrol_totp(*, actor: User | None, user: User, secret: str) -> None:
    """Give ``user`` an authenticator app (TOTP) with a known ``secret``: for the demo's
    accounts, whose secrets are printed so that a reviewer can add them to any authenticator
    app. People enrol their own on the Second factor page, where the secret is made for them."""
    from allauth.mfa.models import Authenticator
    from allauth.mfa.totp.internal.auth import TOTP

    with transaction.atomic():
        if Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            raise ValidationError({"secret": "This user already has an authenticator app."})
        authenticator = TOTP.activate(user, secret).instance
        audit.record(
            action=Action.AUTH_FACTOR_ADDED,
            actor=actor,
            target=user,
            details={"type": authenticator.type, "authenticator": authenticator.pk, "by_self": actor == user},
        )
        # As on the pages (``second_factors_changed``): tokens got without a factor end with the enrolment.
        _revoke_tokens(actor=actor, user=user, tokens=tokens_without_second_factor(user), reason=FACTOR_ADDED)


MIN_RESET_REASON = 10


def _check_reset_actor(actor: User, user: User) -> None:
    if actor is None or not (actor.is_active and actor.is_staff):
        raise PermissionDenied("Only staff reset a second factor.")
    if actor.pk == user.pk:
        raise PermissionDenied("No one resets their own second factor: another staff member does it.")


def second_factor_reset_check(*, actor: User, user: User, reason: str) -> str:
    """The rules of ``second_factor_reset`` checked without changing anything (for a form to
    show them on its fields); the reason, stripped."""
    _check_reset_actor(actor, user)
    reason = (reason or "").strip()
    if len(reason) < MIN_RESET_REASON:
        raise ValidationError({"reason": f"Say why, in at least {MIN_RESET_REASON} characters."})
    if not user.is_active:
        raise ValidationError({"user": "This account is deactivated: there is nothing to reset."})
    return reason


def second_factor_reset(*, actor: User, user: User, reason: str) -> SecondFactorReset:
    """Reset ``user``'s second factors: every authenticator app, security key and recovery code.

    For a staff account this only proposes the reset: another staff member confirms it
    (``second_factor_reset_confirm``), so no single administrator can take over a fellow
    administrator's account by giving it a factor of their own. For anyone else it is done at
    once. Either way it is on the ledger, and the oversight scan raises an alert when it is done.
    """
    reason = second_factor_reset_check(actor=actor, user=user, reason=reason)
    with transaction.atomic():
        User.objects.select_for_update().get(pk=user.pk)  # one proposal at a time per user
        if SecondFactorReset.objects.filter(user=user, done_at__isnull=True).exists():
            raise ValidationError({"user": "A reset of this user's second factor is already waiting for confirmation."})
        reset = SecondFactorReset.objects.create(user=user, reason=reason, proposed_by=actor)
        if user.is_staff:
            audit.record(
                action=Action.USER_SECOND_FACTOR_RESET_PROPOSED,
                actor=actor,
                target=user,
                details={"reset": reset.pk, "username": user.username, "reason": reason},
            )
            return reset
        return _carry_out_reset(reset, confirmed_by=None)


def second_factor_reset_confirm(*, actor: User, reset: SecondFactorReset) -> SecondFactorReset:
    """Carry out a proposed reset of a staff account's second factor: by a staff member who is
    neither the one who proposed it nor the account's owner."""
    with transaction.atomic():
        reset = SecondFactorReset.objects.select_for_update().select_related("user", "proposed_by").get(pk=reset.pk)
        _check_reset_actor(actor, reset.user)
        if not reset.is_pending:
            raise ValidationError({"reset": "This reset has been carried out already."})
        if actor.pk == reset.proposed_by_id:
            raise PermissionDenied("A second staff member confirms the reset, not the one who proposed it.")
        if not reset.user.is_active:
            raise ValidationError({"user": "This account is deactivated: there is nothing to reset."})
        return _carry_out_reset(reset, confirmed_by=actor)


def _carry_out_reset(reset: SecondFactorReset, *, confirmed_by: User | None) -> SecondFactorReset:
    """Remove the factors and end every session and API token of the user: whoever held the
    lost factor (or a session it opened) is out, and the owner enrols anew at next sign-in."""
    from allauth.mfa.models import Authenticator

    user = reset.user
    removed = sorted(Authenticator.objects.filter(user=user).values_list("type", flat=True))
    Authenticator.objects.filter(user=user).delete()
    sessions = _end_sessions(user)
    tokens, _ = user.auth_token_set.all().delete()
    reset.confirmed_by = confirmed_by
    reset.done_at = timezone.now()
    reset.save(update_fields=["confirmed_by", "done_at"])
    audit.record(
        action=Action.USER_SECOND_FACTOR_RESET,
        actor=confirmed_by or reset.proposed_by,
        target=user,
        details={
            "reset": reset.pk,
            "username": user.username,
            "is_staff": user.is_staff,
            "reason": reset.reason,
            "proposed_by": reset.proposed_by.username,
            "confirmed_by": confirmed_by.username if confirmed_by else None,
            "removed": removed,
            "sessions_ended": sessions,
            "tokens_revoked": tokens,
        },
    )
    return reset
