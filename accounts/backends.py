"""Password sign-in switched off (``CUSTOS_LOCAL_LOGIN=false``), except for the break-glass account."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from .sso import password_login_allowed


class LocalPasswordGate:
    """Stands after django-axes and before every backend that checks a password: with local
    sign-in off, a password attempt for any username but the break-glass account's ends here
    (``PermissionDenied`` stops ``authenticate()``; it is a failed sign-in like any other, so it
    is recorded and counts towards the lockout). The login page, the admin login and the API
    token endpoint all sign in through ``authenticate()``, so one gate covers them; single
    sign-on never calls ``authenticate()`` and is not affected.

    Deliberately no ``get_user``: the gate never signs anyone in, so no session names it as its
    backend (``force_login`` and allauth pick the first backend that has one)."""

    def authenticate(self, request: HttpRequest | None, username: str | None = None, password=None, **credentials):
        if password is None or password_login_allowed(username):
            return None  # not a password attempt, or one the password backends may check
        raise PermissionDenied("Password sign-in is switched off; sign in through the identity provider.")
