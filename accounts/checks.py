"""System check: no existing user holds roles that break the separation of duties.

Roles are only set through ``accounts.actions``, which refuse such combinations; rows from
before the rule, or written past the actions (a restored backup, SQL by hand), are found
here, by ``check --deploy`` (a deployment check, so it reads the database only when asked
and never stops the management commands an administrator needs to fix the roles).
"""

from __future__ import annotations

from django.core import checks
from django.db import DatabaseError

from .models import User
from .roles import role_conflicts


def _offenders() -> list[tuple[str, list[str]]]:
    roles_of: dict[str, set[str]] = {}
    rows = User.groups.through.objects.filter(user__is_active=True).values_list("user__username", "group__name")
    for username, role in rows:
        roles_of.setdefault(username, set()).add(role)
    return [
        (username, conflicts) for username, roles in sorted(roles_of.items()) if (conflicts := role_conflicts(roles))
    ]


@checks.register(checks.Tags.security, deploy=True)
def separation_of_duties(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """One error per active user holding roles that must be held by different people."""
    try:
        offenders = _offenders()
    except DatabaseError as error:  # not migrated yet, or no database to reach: nothing to report on
        return [checks.Info(f"Could not read the users to check the separation of duties: {error}", id="accounts.I001")]
    return [
        checks.Error(
            f"User {username!r} holds roles that must be held by different people. " + " ".join(conflicts),
            hint="Remove one of the roles (accounts.actions.user_set_roles, or the admin's user page) "
            "and give it to a second person.",
            id="accounts.E001",
        )
        for username, conflicts in offenders
    ]


@checks.register(checks.Tags.security)
def single_sign_on(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The role map names only Custos roles; with password sign-in off, a break-glass account is named."""
    from django.conf import settings

    from .roles import ALL_ROLES

    messages: list[checks.CheckMessage] = []
    for group, roles in settings.CUSTOS_SSO["ROLE_MAP"].items():
        if unknown := [role for role in roles if role not in ALL_ROLES]:
            messages.append(
                checks.Error(
                    f"CUSTOS_OIDC_ROLE_MAP maps {group!r} to unknown role(s) {', '.join(unknown)}.",
                    hint=f"Custos roles: {', '.join(ALL_ROLES)}.",
                    id="accounts.E002",
                )
            )
    if not settings.LOCAL_LOGIN and not settings.BREAK_GLASS_USERNAME:
        messages.append(
            checks.Warning(
                "Password sign-in is off and no break-glass account is named: if the identity provider is "
                "down, nobody can sign in.",
                hint="Set CUSTOS_BREAK_GLASS_USERNAME (docs/identity.md, break-glass procedure).",
                id="accounts.W001",
            )
        )
    return messages


PROCESS_LOCAL_CACHES = (
    "django.core.cache.backends.locmem.LocMemCache",
    "django_prometheus.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
)


@checks.register(checks.Tags.security, deploy=True)
def shared_cache(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The default cache must be shared by the web processes: the TOTP codes already used, and the
    throttle counters, live there. In a process-local cache another process accepts the same
    code again and counts every limit from zero."""
    from django.conf import settings

    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in PROCESS_LOCAL_CACHES:
        return []
    return [
        checks.Warning(
            f"The default cache ({backend}) is local to each process: a TOTP code accepted by one web "
            "process is accepted again by another, and throttles count per process.",
            hint="Set CACHE_URL to a Redis database (redis://HOST:6379/N), or leave it unset on one "
            "machine (a file cache under the var folder).",
            id="accounts.W002",
        )
    ]
