"""Django's own auth events feed the ledger (the only signals Custos uses)."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

import audit
from audit.actions import Action


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit.record(action=Action.AUTH_LOGIN, actor=user, target=user, request=request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit.record(action=Action.AUTH_LOGOUT, actor=user, target=user, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the username tried is kept; never the password.
    username = str(credentials.get("username", ""))[:150]
    audit.record(action=Action.AUTH_LOGIN_FAILED, details={"username": username}, request=request)
