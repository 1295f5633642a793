"""allauth's second-factor pages (``/accounts/2fa/...``), fitted to Custos's ledger.

allauth changes the factors itself and reports it by signals sent after its own commit (or, for
a removal, after a delete that has already been written): a ledger that failed to write would
leave a factor added or removed and nothing on the record. Here each of its pages runs in one
transaction (``audited``): the authenticators of the user are compared before and after the
view, and every difference is recorded by ``accounts.actions.second_factors_changed`` inside
that transaction, so the change and its events commit together or not at all (an exception,
the ledger's included, rolls the change back). The same action revokes the API tokens that a
change of factor makes stale (see docs/identity.md, "Tokens and factors").

Showing the recovery codes (the page, or the file to download) is recorded too
(``auth.recovery_codes_viewed``): whoever reads them can sign in in place of the owner's phone.
"""

from __future__ import annotations

from functools import wraps

from allauth.mfa.models import Authenticator
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

from .actions import recovery_codes_viewed, second_factors_changed

# allauth's pages that show the recovery codes, and how (the event's ``how``).
SHOWS_CODES = {"mfa_view_recovery_codes": "page", "mfa_download_recovery_codes": "download"}


def _authenticators(user) -> dict[int, Authenticator]:
    return {item.pk: item for item in Authenticator.objects.filter(user=user)}


def audited(view, name: str = ""):
    """Run an allauth second-factor page in one transaction with the events of what it changed."""
    shows = SHOWS_CODES.get(name)

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        user = request.user
        if not user.is_authenticated:  # the sign-in stage: nothing of a signed-in user changes
            return view(request, *args, **kwargs)
        with transaction.atomic():
            before = _authenticators(user)
            response = view(request, *args, **kwargs)
            after = _authenticators(user)
            if before.keys() != after.keys():
                added = [after[pk] for pk in sorted(after.keys() - before.keys())]
                removed = [before[pk] for pk in sorted(before.keys() - after.keys())]
                second_factors_changed(user=user, added=added, removed=removed, request=request)
            if shows and request.method == "GET" and _codes_shown(response, shows):
                codes = next((item for item in after.values() if item.type == Authenticator.Type.RECOVERY_CODES), None)
                recovery_codes_viewed(user=user, authenticator=codes, how=shows, request=request)
        return response

    return wrapped


def _codes_shown(response: HttpResponse, how: str) -> bool:
    if response.status_code != 200:
        return False
    if how == "download":
        return True
    # The page: allauth masks the codes ("****") when it may not show them again.
    return bool((getattr(response, "context_data", None) or {}).get("can_view_codes"))


def audit_patterns(patterns: list[URLPattern]) -> list[URLPattern]:
    """Every ``mfa_*`` page of ``patterns`` wrapped by ``audited`` (any page allauth's MFA app
    adds later, such as security keys, is covered by being listed there)."""
    return [
        URLPattern(p.pattern, audited(p.callback, p.name or ""), p.default_args, p.name)
        if (p.name or "").startswith("mfa_")
        else p
        for p in patterns
    ]
