"""Single sign-on: who an identity provider's sign-in becomes in Custos, and what is refused.

django-allauth's ``openid_connect`` provider runs the protocol (discovery, PKCE, the token
endpoint, the ID token's signature, issuer and audience); ``accounts.adapters`` hands each
completed sign-in to ``sign_on`` here before anyone is signed in. The rules:

- **Identity is the provider's ``sub``, nothing else.** A sign-in is matched to the Custos
  user linked to its ``sub``. It is never linked to an existing account by username or
  e-mail: a person who renames themselves at the provider to a local administrator's name
  must not become that administrator. A username or e-mail that names another Custos
  account is refused (``identity_taken``) and nothing is linked.
- **First sign-in** of an unknown ``sub`` creates the user (``CUSTOS_OIDC_CREATE_USERS``), or
  is refused until staff link the ``sub`` to a user (``manage.py sso_link``).
- **A user deactivated in Custos stays out**, whatever the provider says.
- **Roles** come from a claim (``CUSTOS_OIDC_ROLES_CLAIM``, mapped by ``CUSTOS_OIDC_ROLE_MAP``)
  at every sign-in, through ``accounts.actions`` (so each change is on the ledger), or stay
  Custos's own when no claim is configured. Roles that break the separation of duties are
  refused whole: the user is not signed in and keeps the roles they had.
- **A second factor** counts when the ID token's ``amr`` names one (``CUSTOS_OIDC_MFA_AMR``)
  or its ``acr`` is one of ``CUSTOS_OIDC_MFA_ACR``; otherwise Custos asks for its own.

Every refusal is an ``auth.sso_refused`` event; the oversight scan alerts on the ones that
matter (``investigations.actions.oversight.SSO_REFUSALS``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.mfa.stages import AuthenticateStage
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.http import HttpRequest
from django.shortcuts import render

import audit
from audit.events import Action

from .lockout import username_key
from .models import User
from .roles import ALL_ROLES, role_conflicts
from .usernames import canonical, skeleton

# allauth's name for the one configured provider: its URLs are /accounts/oidc/sso/login/ and
# /accounts/oidc/sso/login/callback/ (the redirect URI to register at the provider).
PROVIDER_ID = "sso"


def config() -> dict[str, Any]:
    return settings.CUSTOS_SSO


def enabled() -> bool:
    return bool(config()["ISSUER"])


# --- break-glass -----------------------------------------------------------------------------


def is_break_glass_name(username: str | None) -> bool:
    """True when ``username`` is the configured break-glass account's (compared as Custos
    compares usernames: NFKC, case-folded)."""
    configured = username_key(settings.BREAK_GLASS_USERNAME)
    return bool(configured) and username_key(username or "") == configured


def password_login_allowed(username: str | None) -> bool:
    """Whether a password may be tried for ``username``: always with local sign-in on; with it
    off, only for the break-glass account."""
    return settings.LOCAL_LOGIN or is_break_glass_name(username)


# --- what the provider asserts ----------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, dict):
        return [str(item) for item in value]
    return [str(value)]


@dataclass(frozen=True)
class Assertion:
    """What one sign-in at the identity provider says about the person."""

    sub: str
    username: str = ""
    email: str = ""
    first_name: str = ""
    last_name: str = ""
    groups: tuple[str, ...] | None = None  # None: no roles claim configured (roles kept in Custos)
    amr: tuple[str, ...] = ()
    acr: str = ""
    claims: dict = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_claims(cls, id_token: dict, userinfo: dict | None = None) -> Assertion:
        """Profile claims from userinfo (falling back to the ID token); ``sub``, ``amr`` and
        ``acr`` only from the ID token, which is signed for this client (and ``sub`` must agree)."""
        userinfo = userinfo or {}
        if userinfo.get("sub") not in (None, id_token.get("sub")):
            raise ValueError("userinfo and ID token name different subjects")
        profile = {**id_token, **userinfo}
        claim = config()["ROLES_CLAIM"]
        return cls(
            sub=str(id_token["sub"]),
            username=str(profile.get("preferred_username") or ""),
            email=str(profile.get("email") or ""),
            first_name=str(profile.get("given_name") or "")[:150],
            last_name=str(profile.get("family_name") or "")[:150],
            groups=tuple(_strings(profile.get(claim))) if claim else None,
            amr=tuple(_strings(id_token.get("amr"))),
            acr=str(id_token.get("acr") or ""),
            claims=profile,
        )

    @property
    def new_username(self) -> str:
        """The username a user created for this identity gets: the provider's, or one made from
        ``sub`` (characters a username cannot hold become ``-``)."""
        return self.username or "sso-" + re.sub(r"[^\w.@+-]", "-", self.sub)[:140]

    @property
    def roles_claimed(self) -> list[str] | None:
        """The Custos roles the provider's groups give, sorted; None when roles are kept in
        Custos. Groups the map does not name give nothing."""
        if self.groups is None:
            return None
        mapping = config()["ROLE_MAP"]
        roles: set[str] = set()
        for group in self.groups:
            if mapping:
                roles.update(mapping.get(group, ()))
            elif group in ALL_ROLES:
                roles.add(group)
        return sorted(roles & set(ALL_ROLES))  # a mis-typed map gives nothing (and fails the system check)

    @property
    def second_factor(self) -> bool:
        """The provider says a second factor was used for this sign-in."""
        if set(self.amr) & set(config()["SECOND_FACTOR_AMR"]):
            return True
        return bool(self.acr) and self.acr in config()["SECOND_FACTOR_ACR"]


# --- the decision ---------------------------------------------------------------------------


class SignOnRefused(Exception):
    """A sign-in the provider completed that Custos refuses; ``message`` is for the person."""

    def __init__(self, reason: str, message: str, *, user: User | None = None, **details: Any):
        super().__init__(message)
        self.reason, self.message, self.user, self.details = reason, message, user, details


NOT_PROVISIONED = (
    "Your sign-on account is not set up in Custos yet. Ask a Custos administrator to link it "
    "(they will need the identifier {sub})."
)
IDENTITY_TAKEN = (
    "Your sign-on username or e-mail is already used by another Custos account, so Custos did not "
    "sign you in. Sign-on never takes over an existing account: ask a Custos administrator to link "
    "your sign-on identity to the right account."
)
IDENTITY_INVALID = (
    "Your sign-on username or e-mail cannot be used in Custos ({problems}) Ask a Custos administrator "
    "to create your account and link your sign-on identity to it."
)
DEACTIVATED = "This Custos account is deactivated. Signing in at your organisation does not change that."
ROLE_CONFLICT = (
    "Your organisation's directory gives you roles that one person may not hold together in Custos "
    "({roles}). You were not signed in; oversight has been told. Ask your directory administrator to "
    "remove one of them."
)


def sign_on(assertion: Assertion, *, linked: User | None) -> User:
    """The Custos user this sign-in is, after bringing their roles in line with the provider's.

    ``linked`` is the user already linked to ``assertion.sub`` (allauth looked it up), or None.
    Raises ``SignOnRefused`` (nothing changed) when the sign-in must not go on.
    """
    from .actions import user_create_from_sso, user_set_roles

    roles = assertion.roles_claimed
    if linked is not None:
        if not linked.is_active:
            raise SignOnRefused("deactivated", DEACTIVATED, user=linked)
        _check_roles(assertion, roles, user=linked)
        if roles is not None and sorted(linked.groups.values_list("name", flat=True)) != roles:
            user_set_roles(actor=None, user=linked, roles=roles, source="sso")
        return linked
    if not config()["CREATE_USERS"]:
        raise SignOnRefused("not_provisioned", NOT_PROVISIONED.format(sub=assertion.sub))
    _check_roles(assertion, roles, user=None)
    _check_identity_free(assertion)
    try:
        return user_create_from_sso(
            provider=PROVIDER_ID,
            sub=assertion.sub,
            username=assertion.new_username,
            email=assertion.email,
            first_name=assertion.first_name,
            last_name=assertion.last_name,
            roles=roles or [],
        )
    except ValidationError as error:  # a username or e-mail Custos cannot store
        raise SignOnRefused(
            "identity_invalid", IDENTITY_INVALID.format(problems=" ".join(error.messages)), problems=error.messages
        ) from error


def _check_roles(assertion: Assertion, roles: list[str] | None, *, user: User | None) -> None:
    if roles is not None and (conflicts := role_conflicts(roles)):
        raise SignOnRefused(
            "role_conflict", ROLE_CONFLICT.format(roles=", ".join(roles)), user=user, conflicts=conflicts
        )


def _check_identity_free(assertion: Assertion) -> None:
    """A new user's username and e-mail must not name an existing account (or the break-glass
    account's name), in any case, or in look-alike letters (``accounts.usernames``)."""
    username = canonical(assertion.new_username)
    taken = User.objects.filter(Q(username__iexact=username) | Q(username_skeleton=skeleton(username))).exists()
    # The break-glass name is reserved even before its account exists.
    taken = taken or is_break_glass_name(username) or skeleton(username) == skeleton(settings.BREAK_GLASS_USERNAME)
    if assertion.email:
        taken = taken or User.objects.filter(email__iexact=assertion.email).exists()
    if taken:
        raise SignOnRefused("identity_taken", IDENTITY_TAKEN)


def record_refusal(request: HttpRequest | None, assertion: Assertion, refusal: SignOnRefused) -> None:
    """``auth.sso_refused``: the reason, the provider's ``sub`` and what it claimed."""
    with transaction.atomic():
        audit.record(
            action=Action.AUTH_SSO_REFUSED,
            target=refusal.user,
            details={
                "reason": refusal.reason,
                "sub": assertion.sub,
                "username": assertion.username[:150],
                "email": assertion.email[:254],
                "groups": list(assertion.groups or [])[:50],
                "roles_claimed": assertion.roles_claimed,
                **refusal.details,
            },
            request=request,
        )


# --- django-allauth -------------------------------------------------------------------------


def assertion_of(sociallogin: SocialLogin) -> Assertion:
    data = sociallogin.account.extra_data or {}
    return Assertion.from_claims(data.get("id_token") or {}, data.get("userinfo"))


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    """allauth, fitted to the rules above: every completed sign-in goes through ``sign_on``
    before anyone is signed in; nothing is ever matched by e-mail; allauth's sign-up form is
    never shown (``sign_on`` creates the user or refuses)."""

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        try:
            assertion = assertion_of(sociallogin)
        except (KeyError, ValueError) as error:
            incomplete = self._refused(request, "The identity provider's answer was incomplete.")
            raise ImmediateHttpResponse(incomplete) from error
        linked = sociallogin.user if sociallogin.is_existing else None
        try:
            user = sign_on(assertion, linked=linked)
        except SignOnRefused as refusal:
            record_refusal(request, assertion, refusal)
            raise ImmediateHttpResponse(self._refused(request, refusal.message)) from refusal
        if linked is None:  # just created and linked: carry on as an existing link
            account = user.socialaccount_set.get(provider=PROVIDER_ID, uid=assertion.sub)
            account.extra_data = sociallogin.account.extra_data
            account.save(update_fields=["extra_data"])
            sociallogin.account = account
        sociallogin.user = user

    def _refused(self, request: HttpRequest, message: str):
        context = {"message": message, "provider_name": config()["PROVIDER_NAME"]}
        return render(request, "accounts/sso_refused.html", context, status=403)

    def authenticate_by_email(self, sociallogin: SocialLogin):
        return None  # never: an e-mail at the provider says nothing about who owns a Custos account

    def is_auto_signup_allowed(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return False

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None) -> None:
        """The provider answered with an error, or the answer did not check out (state, PKCE,
        signature): a failed sign-in, recorded like a wrong password."""
        with transaction.atomic():
            audit.record(
                action=Action.AUTH_LOGIN_FAILED,
                details={"username": "", "sso_error": str(error or "unknown")[:100]},
                request=request,
            )


def context(request: HttpRequest) -> dict:
    """Context processor: the sign-in pages show the provider's button and, with password sign-in
    off, the break-glass form only."""
    return {
        "sso": {
            "enabled": enabled(),
            "provider_id": PROVIDER_ID,
            "provider_name": config()["PROVIDER_NAME"],
            "local_login": settings.LOCAL_LOGIN,
        }
    }


# allauth's record of how this session authenticated: a sign-on entry is written just before the
# sign-in (or before the second-factor step that comes first), so a recent one means this sign-in.
SIGN_ON_RECORD_SECONDS = 15 * 60


def sign_on_details(request: HttpRequest, user: User) -> dict | None:
    """``{"method": "sso", "sub": ...}`` for the ``auth.login`` of a sign-in through the
    provider (the newest sign-in record of the session is a recent sign-on of this very user's
    linked identity); None for any other sign-in."""
    from allauth.account.internal.flows.login import get_authentication_records

    if getattr(request, "session", None) is None:
        return None
    records = [record for record in get_authentication_records(request, user) if record.get("method") != "mfa"]
    if not records or records[-1].get("method") != "socialaccount":
        return None
    record = records[-1]
    recent = time.time() - float(record.get("at", 0)) <= SIGN_ON_RECORD_SECONDS
    linked = user.socialaccount_set.filter(provider=record.get("provider"), uid=record.get("uid")).exists()
    return {"method": "sso", "sub": record.get("uid")} if recent and linked else None


class SecondFactorStage(AuthenticateStage):
    """allauth's second-factor step of a sign-in, except after a sign-on whose provider asserted
    a second factor (``Assertion.second_factor``): that one counts, is recorded as this
    session's second factor (``method="sso"``, for the roles that need one and for step-up) and
    Custos does not ask again. Any other sign-in is asked for a code as usual."""

    def handle(self) -> tuple:
        sociallogin = (self.login.signal_kwargs or {}).get("sociallogin")
        if sociallogin is not None and self.login.user is not None and assertion_of(sociallogin).second_factor:
            from .factors import record_second_factor

            record_second_factor(self.request, method="sso", user=self.login.user)
            return None, True
        return super().handle()
