from allauth.account import views as account_views
from allauth.mfa.base import views as mfa_views
from allauth.mfa.recovery_codes import views as recovery_views
from allauth.mfa.totp import views as totp_views
from allauth.mfa.webauthn import views as webauthn_views
from allauth.socialaccount import views as socialaccount_views
from allauth.socialaccount.providers.openid_connect import views as oidc_views
from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import views
from .factor_pages import audit_patterns

app_name = "accounts"

urlpatterns = [
    path("password/", views.password_change, name="password_change"),
    path("settings/", views.user_settings, name="settings"),
    path("api-token/", views.api_token, name="api_token"),
    path("step-up/key/", views.step_up_key, name="step_up_key"),
]

# django-allauth's pages that Custos uses, under allauth's own (un-namespaced) names, which
# allauth reverses itself. Only these: no sign-up, no e-mail or password-reset flows.
allauth_urlpatterns = [
    path("login/", account_views.login, name="account_login"),
    path("logout/", account_views.logout, name="account_logout"),
    path("inactive/", account_views.account_inactive, name="account_inactive"),
    path("reauthenticate/", account_views.reauthenticate, name="account_reauthenticate"),
    path("2fa/", mfa_views.index, name="mfa_index"),
    path("2fa/authenticate/", mfa_views.authenticate, name="mfa_authenticate"),
    path("2fa/reauthenticate/", mfa_views.reauthenticate, name="mfa_reauthenticate"),
    path("2fa/totp/activate/", totp_views.activate_totp, name="mfa_activate_totp"),
    path("2fa/totp/deactivate/", totp_views.deactivate_totp, name="mfa_deactivate_totp"),
    path("2fa/recovery-codes/", recovery_views.view_recovery_codes, name="mfa_view_recovery_codes"),
    path("2fa/recovery-codes/generate/", recovery_views.generate_recovery_codes, name="mfa_generate_recovery_codes"),
    path("2fa/recovery-codes/download/", recovery_views.download_recovery_codes, name="mfa_download_recovery_codes"),
    # Security keys and passkeys (WebAuthn), as a second factor. No passkey sign-in without the
    # password (MFA_PASSKEY_LOGIN_ENABLED is off): see docs/identity.md.
    path("2fa/webauthn/", webauthn_views.list_webauthn, name="mfa_list_webauthn"),
    path("2fa/webauthn/add/", webauthn_views.add_webauthn, name="mfa_add_webauthn"),
    path("2fa/webauthn/reauthenticate/", views.reauthenticate_with_key, name="mfa_reauthenticate_webauthn"),
    path("2fa/webauthn/keys/<int:pk>/remove/", views.remove_security_key, name="mfa_remove_webauthn"),
    path("2fa/webauthn/keys/<int:pk>/edit/", webauthn_views.edit_webauthn, name="mfa_edit_webauthn"),
]
# Each second-factor page in one transaction with the events of what it changed or showed.
allauth_urlpatterns = audit_patterns(allauth_urlpatterns)

# Single sign-on (accounts.sso): allauth's OpenID Connect sign-in under allauth's own names, which
# allauth reverses itself. Only these: no sign-up form, no connecting further accounts.
sso_urlpatterns = [
    path("oidc/<str:provider_id>/login/", oidc_views.login, name="openid_connect_login"),
    path("oidc/<str:provider_id>/login/callback/", oidc_views.callback, name="openid_connect_callback"),
    path("sso/cancelled/", socialaccount_views.login_cancelled, name="socialaccount_login_cancelled"),
    path("sso/error/", login_not_required(socialaccount_views.login_error), name="socialaccount_login_error"),
]
