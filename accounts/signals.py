"""Auth events feed the ledger (the only signals Custos uses): Django's and django-axes's.

What a user does to their own second factors on allauth's pages is not taken from allauth's
signals, which are sent after its commit: ``accounts.factor_pages`` records it inside the
page's own transaction."""

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

import audit
from audit.events import Action

from .lockout import lockout_started
from .models import User
from .sso import is_break_glass_name, sign_on_details
from .timeouts import start_session_clock


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    audit.record(
        action=Action.AUTH_LOGIN, actor=user, target=user, details=sign_on_details(request, user), request=request
    )
    if is_break_glass_name(user.username):
        # The emergency account: every sign-in is loud (the oversight scan alerts on it).
        details = {"username": user.username, "via": getattr(request, "path", "")}
        audit.record(action=Action.AUTH_BREAK_GLASS, actor=user, target=user, details=details, request=request)
    start_session_clock(request)


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        # A session ended by a timeout says which one ("idle", "absolute").
        reason = getattr(request, "session_end_reason", None)
        details = {"reason": reason} if reason else None
        audit.record(action=Action.AUTH_LOGOUT, actor=user, target=user, details=details, request=request)


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    # Only the username tried is kept; never the password.
    username = str(credentials.get("username", ""))[:150]
    audit.record(action=Action.AUTH_LOGIN_FAILED, details={"username": username}, request=request)


@receiver(user_locked_out)
def _locked_out(sender, request, username, ip_address, **kwargs):
    # Only the failure that starts a lockout is an event; attempts refused during it are
    # already on the ledger as failed logins. The oversight scan raises an alert from it.
    if not lockout_started(request):
        return
    account = User.objects.filter(username__iexact=username).first()
    audit.record(
        action=Action.AUTH_LOCKED_OUT,
        target=account,
        details={"username": username, "address": ip_address, "failures": request.axes_failures_since_start},
        request=request,
    )
