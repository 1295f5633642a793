"""Custos settings, read from the environment (django-environ).

Two shapes:

* the embedded default (nothing configured): SQLite files under ``var/`` for the app and the
  user-data store, Celery on kombu's filesystem transport, mail to the console. ``make run``
  writes a random ``SECRET_KEY`` into a git-ignored ``.env`` on first run;
* production: ``DATABASE_URL``, ``USERDATA_DATABASE_URL`` (a read-only role),
  ``CELERY_BROKER_URL`` (Redis) and the HTTPS settings below.

``SECRET_KEY`` is always required: settings refuse to load without it.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CUSTOS_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
ENV_FILE = Path(os.environ.get("CUSTOS_ENV_FILE", BASE_DIR / ".env"))
if ENV_FILE.is_file():
    env.read_env(str(ENV_FILE), overwrite=False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set. Set it in the environment, or run `make run` once to write a "
        "random one into .env for the embedded default."
    )

DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CUSTOS_VERSION = "0.1.0"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "guardian",
    "axes",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "django_celery_beat",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_filters",
    "audit",
    "userdata",
    "accounts",
    "investigations",
    "operations",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django_permissions_policy.PermissionsPolicyMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # After WhiteNoise: static files stay cacheable, everything a view answers is no-store.
    "config.middleware.NoStoreMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Before the login requirement: a timed-out session goes on as anonymous and is sent to log in.
    "accounts.timeouts.SessionTimeoutMiddleware",
    "accounts.middleware.SessionAwareLoginRequiredMiddleware",
    # A signed-in user whose role needs a second factor and who has none yet reaches only the
    # enrolment pages (accounts.factors).
    "accounts.factors.SecondFactorRequiredMiddleware",
    "accounts.middleware.TimeZoneMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "audit.middleware.RequestContextMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
    # Below the metrics: a refused state change is a 409 page, not an exception, to them too.
    "investigations.middleware.ConflictMiddleware",
    # Last, as django-axes asks: turns a lockout into the lockout page (so the metrics above
    # count the 429 that is sent).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
                "accounts.sso.context",
                "accounts.factors.template_context",
                "accounts.middleware.kept_input",
                "investigations.context_processors.oversight",
            ],
        },
    },
]

# --- databases ---------------------------------------------------------------------------

_SQLITE_OPTIONS = {
    # Several processes (web, worker, beat) share the files: wait for locks, take the write
    # lock at BEGIN so that read-then-write transactions cannot deadlock, and use WAL.
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


# django-prometheus's wrappers of Django's backends count queries and errors per alias; they
# change nothing else (``connection.vendor`` stays "postgresql" or "sqlite").
_METERED_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}


def _database(var: str, filename: str) -> dict:
    config = env.db_url(var, default=f"sqlite:///{VAR_DIR / filename}")
    config["ENGINE"] = _METERED_ENGINES.get(config["ENGINE"], config["ENGINE"])
    if config["ENGINE"].endswith(".sqlite3"):
        config["OPTIONS"] = {**_SQLITE_OPTIONS, **config.get("OPTIONS", {})}
        config["TEST"] = {"NAME": str(VAR_DIR / f"test_{filename}")}
    else:
        config.setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=0))
        config.setdefault("CONN_HEALTH_CHECKS", True)
    config["ATOMIC_REQUESTS"] = False
    return config


DATABASES = {
    "default": _database("DATABASE_URL", "custos.sqlite3"),
    "userdata": _database("USERDATA_DATABASE_URL", "userdata.sqlite3"),
}
DATABASE_ROUTERS = ["config.routers.UserDataRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
EMBEDDED = DATABASES["default"]["ENGINE"].endswith(".sqlite3")

# --- auth --------------------------------------------------------------------------------

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses every attempt of a locked-out account or address before a password is
    # checked (django-axes). Every login path goes through authenticate(), so all are covered.
    "axes.backends.AxesStandaloneBackend",
    # Then: with CUSTOS_LOCAL_LOGIN off, no password is checked but the break-glass account's.
    "accounts.backends.LocalPasswordGate",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# No anonymous user in guardian: anonymous visitors never hold object permissions.
ANONYMOUS_USER_NAME = None
GUARDIAN_MONKEY_PATCH_USER = False
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "account_login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# How many proxies stand in front of Custos (0: clients connect directly). The client address
# of the ledger, the lockout and the API throttles is derived from it (audit.context.client_ip);
# with 0, X-Forwarded-For is ignored.
CUSTOS_PROXY_COUNT = env.int("CUSTOS_PROXY_COUNT", default=0)
if CUSTOS_PROXY_COUNT < 0:
    raise ImproperlyConfigured("CUSTOS_PROXY_COUNT must be 0 or more.")

# Lockout (django-axes): after LOCKOUT_FAILURES failed logins for one username, or from one
# client address, every login of that username or from that address is refused until the
# cool-off has passed since the failure that locked it, or staff unlock it (audited). The answer is the
# same whether the username exists or not. Attempts live in the database.
AXES_FAILURE_LIMIT = env.int("CUSTOS_LOCKOUT_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("CUSTOS_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_CLIENT_IP_CALLABLE = "audit.context.client_ip"
AXES_USERNAME_CALLABLE = "accounts.lockout.attempted_username"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
# A refused attempt during a lockout does not extend it; a success does not wipe the failures
# (it would also wipe the address's failures against other accounts).
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_RESET_ON_SUCCESS = False
AXES_DISABLE_ACCESS_LOG = True  # successful logins are in the ledger already
AXES_ENABLE_ADMIN = False  # accounts.admin shows the attempts; unlocking there is audited
AXES_HTTP_RESPONSE_CODE = 429

# Sign-in and second factors (django-allauth, docs/identity.md): allauth's login flow asks an
# enrolled user for a second factor before the session is signed in. Accounts are made by staff
# (no sign-up, no e-mail flows); usernames only. django-axes stays the one lockout of password
# sign-ins, so allauth's own login rate limits are off; failed second-factor codes are counted
# by accounts.factors (same limit and cool-off as the lockout).
ACCOUNT_ADAPTER = "accounts.adapters.AccountAdapter"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "password1*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_RATE_LIMITS = {"login": None, "login_failed": None}
MFA_ADAPTER = "accounts.adapters.MFAAdapter"
MFA_FORMS = {
    "authenticate": "accounts.forms.SecondFactorForm",
    "reauthenticate": "accounts.forms.SecondFactorAgainForm",
    "authenticate_webauthn": "accounts.forms.SecondFactorKeyForm",
    "reauthenticate_webauthn": "accounts.forms.SecondFactorKeyAgainForm",
}
# An authenticator app (TOTP) or a security key / passkey (WebAuthn); recovery codes back them up.
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
# A key is a second factor after the password, never a sign-in on its own: allauth's passkey
# login would bypass django-axes's lockout and CUSTOS_LOCAL_LOGIN (no authenticate() call).
MFA_PASSKEY_LOGIN_ENABLED = False
MFA_PASSKEY_SIGNUP_ENABLED = False
MFA_TOTP_ISSUER = env.str("CUSTOS_MFA_ISSUER", default="Custos")
# One 30-second step either side: a phone's clock a little off still works. A code is accepted
# once (allauth remembers used codes in the cache).
MFA_TOTP_TOLERANCE = 1
MFA_WEBAUTHN_USER_VERIFICATION = "preferred"
# Roles whose members must have a second factor: taken to enrolment at first sign-in and refused
# everything else until then ("staff" stands for staff accounts). Investigators can be added.
CUSTOS_MFA_REQUIRED_ROLES = env.list(
    "CUSTOS_MFA_REQUIRED_ROLES", default=["legal_reviewer", "senior_legal_reviewer", "auditor", "staff"]
)
# WebAuthn needs https, except on http://localhost (a secure context for browsers), which the
# library (fido2) accepts by itself: the embedded default and the browser tests need nothing
# more. This switch turns the origin check off altogether; leave it off.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = env.bool("CUSTOS_WEBAUTHN_ALLOW_HTTP", default=False)
# A signed-in session ends after SESSION_IDLE_TIMEOUT without a request, and SESSION_ABSOLUTE_TIMEOUT
# after sign-in whatever the activity (accounts.timeouts). The cookie lives no longer than that.
SESSION_IDLE_TIMEOUT = timedelta(minutes=env.int("CUSTOS_SESSION_IDLE_MINUTES", default=30))
SESSION_ABSOLUTE_TIMEOUT = timedelta(hours=env.float("CUSTOS_SESSION_MAX_HOURS", default=12))
if not timedelta(0) < SESSION_IDLE_TIMEOUT <= SESSION_ABSOLUTE_TIMEOUT:
    raise ImproperlyConfigured("Session timeouts: 0 < CUSTOS_SESSION_IDLE_MINUTES <= CUSTOS_SESSION_MAX_HOURS.")
SESSION_COOKIE_AGE = int(SESSION_ABSOLUTE_TIMEOUT.total_seconds())
SESSION_EXPIRE_AT_BROWSER_CLOSE = True

# --- single sign-on (OpenID Connect through django-allauth; docs/identity.md) -----------------

# The organisation's identity provider. With CUSTOS_OIDC_ISSUER unset there is no single sign-on.
SSO_ISSUER = env.str("CUSTOS_OIDC_ISSUER", default="").rstrip("/")


def _role_map(text: str) -> dict[str, list[str]]:
    """``group=role,group2=role+role``: which Custos roles an IdP group gives (accounts.sso)."""
    mapping: dict[str, list[str]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, _, roles = item.rpartition("=")
        if not group or not roles:
            raise ImproperlyConfigured(f"CUSTOS_OIDC_ROLE_MAP: {item!r} is not group=role (roles joined by +).")
        mapping[group.strip()] = [role.strip() for role in roles.split("+") if role.strip()]
    return mapping


CUSTOS_SSO = {
    "ISSUER": SSO_ISSUER,
    "PROVIDER_NAME": env.str("CUSTOS_OIDC_PROVIDER_NAME", default="Single sign-on"),
    # The claim listing the user's IdP groups (e.g. "groups"); empty: roles are kept in Custos.
    "ROLES_CLAIM": env.str("CUSTOS_OIDC_ROLES_CLAIM", default=""),
    # IdP group -> Custos roles. Empty: the claim's values are Custos role names themselves.
    "ROLE_MAP": _role_map(env.str("CUSTOS_OIDC_ROLE_MAP", default="")),
    # First sign-in of an unknown `sub`: create the user (true) or refuse until staff link it.
    "CREATE_USERS": env.bool("CUSTOS_OIDC_CREATE_USERS", default=False),
    # The IdP's word that a second factor was used at sign-in: one of these amr values (RFC 8176)...
    "SECOND_FACTOR_AMR": env.list("CUSTOS_OIDC_MFA_AMR", default=["mfa", "otp", "hwk", "sc", "swk"]),
    # ...or one of these acr values (none by default: acr values are each IdP's own).
    "SECOND_FACTOR_ACR": env.list("CUSTOS_OIDC_MFA_ACR", default=[]),
}
# django-allauth's OpenID Connect provider runs the protocol: discovery, PKCE, the code exchange,
# the ID token's signature, issuer and audience. Register the redirect URI
# <SITE_URL>/accounts/oidc/sso/login/callback/ at the provider. accounts.sso decides who signs in.
SOCIALACCOUNT_ADAPTER = "accounts.sso.SocialAccountAdapter"
SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": "sso",
                "name": CUSTOS_SSO["PROVIDER_NAME"],
                "client_id": env.str("CUSTOS_OIDC_CLIENT_ID", default=""),
                "secret": env.str("CUSTOS_OIDC_CLIENT_SECRET", default=""),
                "settings": {
                    "server_url": SSO_ISSUER,
                    "scope": env.list("CUSTOS_OIDC_SCOPES", default=["openid", "profile", "email"]),
                },
            }
        ]
        if SSO_ISSUER
        else [],
    }
}
# Never sign anyone in to an existing account by e-mail, never show allauth's sign-up form, keep
# no provider tokens: accounts.sso matches on the provider's sub alone, creates or refuses.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = False
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_EMAIL_VERIFICATION = "none"
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_LOGIN_ON_GET = False  # the sign-in button posts (no sign-in started by a link)
# Password sign-in (login page, admin, API token). Off: only the break-glass account may use a
# password; everyone else signs in through the identity provider.
LOCAL_LOGIN = env.bool("CUSTOS_LOCAL_LOGIN", default=True)
BREAK_GLASS_USERNAME = env.str("CUSTOS_BREAK_GLASS_USERNAME", default="")
if not LOCAL_LOGIN and not SSO_ISSUER:
    raise ImproperlyConfigured("CUSTOS_LOCAL_LOGIN=false needs single sign-on: set CUSTOS_OIDC_ISSUER.")

# Step-up (accounts.stepup, docs/identity.md): decisions, registry changes, revocations and
# user or role changes need a second-factor check within this many minutes.
CUSTOS_STEP_UP_MINUTES = env.int("CUSTOS_STEP_UP_MINUTES", default=10)
if CUSTOS_STEP_UP_MINUTES < 1:
    raise ImproperlyConfigured("CUSTOS_STEP_UP_MINUTES must be 1 or more.")

# --- i18n, time --------------------------------------------------------------------------

LANGUAGE_CODE = "en-gb"
TIME_ZONE = "UTC"  # stored and default; each user reads times in their own zone (accounts.middleware)
# One date-time format across the app (templates use |date:"DATETIME_FORMAT" / "DATE_FORMAT").
FORMAT_MODULE_PATH = ["config.formats"]
USE_I18N = True
USE_TZ = True

# --- static ------------------------------------------------------------------------------

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": env.str(
            "STATICFILES_STORAGE",
            default="django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG or EMBEDDED
            else "whitenoise.storage.CompressedManifestStaticFilesStorage",
        )
    },
}


# --- evidence ----------------------------------------------------------------------------

# Case evidence goes through the "evidence" storage alias: files under var/evidence/ on the
# embedded default; with EVIDENCE_S3_BUCKET set, any S3-compatible store (django-storages).
# Custos names the stored objects itself and never overwrites one (docs/evidence.md).
EVIDENCE_S3_BUCKET = env.str("EVIDENCE_S3_BUCKET", default="")
if EVIDENCE_S3_BUCKET:
    STORAGES["evidence"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": EVIDENCE_S3_BUCKET,
            "endpoint_url": env.str("EVIDENCE_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("EVIDENCE_S3_REGION", default="") or None,
            "access_key": env.str("EVIDENCE_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("EVIDENCE_S3_SECRET_ACCESS_KEY", default="") or None,
            "location": env.str("EVIDENCE_S3_PREFIX", default="evidence"),
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
        },
    }
else:
    STORAGES["evidence"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "evidence"), "base_url": None, "file_permissions_mode": 0o640},
    }
EVIDENCE = {
    # The largest file accepted (bytes); a larger upload is refused with a field error.
    "MAX_BYTES": env.int("CUSTOS_EVIDENCE_MAX_BYTES", default=50 * 1024 * 1024),
    # Content types accepted, as sniffed from the bytes (never the type the client names).
    "ALLOWED_TYPES": env.list(
        "CUSTOS_EVIDENCE_TYPES",
        default=[
            "application/pdf",
            "image/png",
            "image/jpeg",
            "image/gif",
            "text/plain",
            "text/csv",
            "application/json",
            "message/rfc822",
        ],
    ),
    # Items re-hashed per transaction by the periodic custody check.
    "VERIFY_BATCH": env.int("CUSTOS_EVIDENCE_VERIFY_BATCH", default=50),
    # Days after a case closes before its evidence files are purged (the records and their
    # hashes stay); a case under legal hold is never purged.
    "RETENTION_DAYS": env.int("CUSTOS_EVIDENCE_RETENTION_DAYS", default=365),
    # Items purged per transaction by the periodic retention task.
    "PURGE_BATCH": env.int("CUSTOS_EVIDENCE_PURGE_BATCH", default=100),
    # Hours a proposal to lift a legal hold waits for a second legal reviewer; older, it has
    # lapsed and the next lift is a new proposal (a stale one is never confirmed much later).
    "HOLD_LIFT_PROPOSAL_HOURS": env.int("CUSTOS_HOLD_LIFT_PROPOSAL_HOURS", default=72),
}
# Every uploaded file is hashed chunk by chunk as it streams in, and written to a temporary
# file (never held in memory); past EVIDENCE["MAX_BYTES"] the rest is counted, not kept.
FILE_UPLOAD_HANDLERS = ["investigations.custody.HashingUploadHandler"]

WHITENOISE_USE_FINDERS = DEBUG or EMBEDDED  # serve static/ without collectstatic when embedded

# --- mail --------------------------------------------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="custos@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Seconds a worker waits on the mail server before the send fails and is retried later.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
OVERSIGHT_EMAILS = env.list("OVERSIGHT_EMAILS", default=[])
# Where people reach Custos: e-mails carry absolute links built on it (no request to ask).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- security (production values; check --deploy must pass with production env) ----------

SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy (django-csp): scripts and styles only from our own static files,
# never inline; no plug-ins, no framing, forms post only to us.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}
# The sign-on button posts to Custos, which redirects the browser to the identity provider;
# browsers hold that redirect to form-action, so the provider's origin is allowed there.
if SSO_ISSUER:
    _issuer = urlsplit(SSO_ISSUER)
    CONTENT_SECURITY_POLICY["DIRECTIVES"]["form-action"].append(f"{_issuer.scheme}://{_issuer.netloc}")
# Permissions-Policy (django-permissions-policy): browser features Custos never uses are off
# for every origin. WebAuthn (publickey-credentials-*) keeps the browser default, "self".
PERMISSIONS_POLICY: dict[str, list[str]] = {
    feature: []
    for feature in (
        "accelerometer",
        "autoplay",
        "bluetooth",
        "browsing-topics",
        "camera",
        "display-capture",
        "geolocation",
        "gyroscope",
        "hid",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "serial",
        "usb",
    )
}

# --- the rules of the product (limits a legal team may tune) -----------------------------

STRICT_LEGAL_BASES = ["legal_process", "imminent_harm"]
LEAK_PURPOSE_LIMIT = env.str("CUSTOS_LEAK_PURPOSE_LIMIT", default="escalate")
if LEAK_PURPOSE_LIMIT not in ("escalate", "refuse"):
    raise ImproperlyConfigured(f"CUSTOS_LEAK_PURPOSE_LIMIT must be escalate or refuse, not {LEAK_PURPOSE_LIMIT!r}.")
CUSTOS = {
    "MAX_WINDOW_DAYS": env.int("CUSTOS_MAX_WINDOW_DAYS", default=366),
    "MAX_GRANT_HOURS": env.int("CUSTOS_MAX_GRANT_HOURS", default=7 * 24),
    "REQUEST_TTL_HOURS": env.int("CUSTOS_REQUEST_TTL_HOURS", default=7 * 24),
    "MAX_SUBJECTS": env.int("CUSTOS_MAX_SUBJECTS", default=100),
    "MIN_JUSTIFICATION": env.int("CUSTOS_MIN_JUSTIFICATION", default=40),
    "QUERY_ROW_CAP": env.int("CUSTOS_QUERY_ROW_CAP", default=10_000),
    "RESULT_RETENTION_DAYS": env.int("CUSTOS_RESULT_RETENTION_DAYS", default=30),
    # Grants expired per transaction by expire_grants: bounds the transaction whatever the backlog.
    "EXPIRY_BATCH": env.int("CUSTOS_EXPIRY_BATCH", default=1000),
    # Queued e-mails (investigations.notify): tries before giving up (retries wait 1, 2, 4 ...
    # 60 minutes: 8 tries span about 2 hours), and days sent or given-up mails are kept.
    "MAIL_ATTEMPTS": env.int("CUSTOS_MAIL_ATTEMPTS", default=8),
    "MAIL_KEEP_DAYS": env.int("CUSTOS_MAIL_KEEP_DAYS", default=7),
    # The mail worker's doorbell rings at most once per this many milliseconds (0: after every
    # commit that queued mail); the rung delivery runs again after the window.
    "MAIL_DOORBELL_MS": env.int("CUSTOS_MAIL_DOORBELL_MS", default=1000),
    # Oversight alerts, derived from the audit trail (investigations.actions.oversight).
    "OVERSIGHT": {
        # N denied query attempts by one user within W minutes raise one alert.
        "REPEATED_DENIALS": env.int("CUSTOS_OVERSIGHT_REPEATED_DENIALS", default=3),
        "DENIAL_WINDOW_MINUTES": env.int("CUSTOS_OVERSIGHT_DENIAL_WINDOW_MINUTES", default=60),
        # Working hours [start, end) on working days (0 = Monday), in TIME_ZONE.
        "WORKING_HOURS": tuple(env.list("CUSTOS_OVERSIGHT_WORKING_HOURS", default=["08:00", "19:00"])),
        "WORKING_DAYS": tuple(env.list("CUSTOS_OVERSIGHT_WORKING_DAYS", cast=int, default=[0, 1, 2, 3, 4])),
        "TIME_ZONE": env.str("CUSTOS_OVERSIGHT_TIME_ZONE", default="UTC"),
        # Off-hours queries by one user on one case within this many hours make one alert.
        "OFF_HOURS_GROUP_HOURS": env.int("CUSTOS_OVERSIGHT_OFF_HOURS_GROUP_HOURS", default=12),
        "SCAN_BATCH": env.int("CUSTOS_OVERSIGHT_SCAN_BATCH", default=200),
        # After a commit rings the scan, further rings within this many milliseconds are left
        # out (one Redis publish per window, not per commit); the rung scan runs again after
        # the window, so an alert waits at most about this long plus a scan.
        "DOORBELL_MS": env.int("CUSTOS_OVERSIGHT_DOORBELL_MS", default=1000),
        # More than N subject lookups (identifiers resolved in drafts) by one user within W
        # minutes raise one alert: probing what an IP or email reaches, draft after draft.
        "LOOKUP_PROBES": env.int("CUSTOS_OVERSIGHT_LOOKUP_PROBES", default=20),
        "LOOKUP_WINDOW_MINUTES": env.int("CUSTOS_OVERSIGHT_LOOKUP_WINDOW_MINUTES", default=60),
    },
    # A removed protected subject still protects its account this many days after the removal
    # was confirmed: requests about it keep following the protected policy.
    "REGISTRY_COOLING_DAYS": env.int("CUSTOS_REGISTRY_COOLING_DAYS", default=30),
    # An email, phone, IP or device that resolves to more accounts than this is refused with a
    # field error (an office IP shared by thousands is not a subject).
    "MAX_RESOLVED_PER_IDENTIFIER": env.int("CUSTOS_MAX_RESOLVED_PER_IDENTIFIER", default=20),
    # What a request touching a protected subject needs, per registry category ("default" for
    # any category not listed; "purpose_limit" for requests escalated by PURPOSE_LIMITS below).
    # legal_bases None means any legal basis; with several categories the strictest wins.
    "PROTECTED_POLICY": {
        "default": {"approvals": 2, "senior": 1, "legal_bases": None},
        "journalist": {"approvals": 2, "senior": 1, "legal_bases": STRICT_LEGAL_BASES},
        "media_organisation": {"approvals": 2, "senior": 1, "legal_bases": STRICT_LEGAL_BASES},
        "lawyer": {"approvals": 2, "senior": 1, "legal_bases": STRICT_LEGAL_BASES},
        "purpose_limit": {"approvals": 2, "senior": 1, "legal_bases": STRICT_LEGAL_BASES},
    },
    # Purpose limits by case type: the data categories a case of that type may request about
    # accounts that are not employees. Anything else is "refuse"d (a field error) or
    # "escalate"d (the request is handled as protected: PROTECTED_POLICY["purpose_limit"]).
    # Case types not listed have no purpose limit.
    "PURPOSE_LIMITS": {
        "leak": {
            "non_employee_categories": ["profile", "devices"],
            "otherwise": LEAK_PURPOSE_LIMIT,
        },
    },
}

# --- celery ------------------------------------------------------------------------------

BROKER_DIR = VAR_DIR / "broker"
# "localhost" only so kombu does not warn that no host was given; the transport has none.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    for folder in ("queue", "processed", "control"):
        (BROKER_DIR / folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        # Longer than the longest task time limit, so a slow task is not redelivered while
        # it still runs.
        "visibility_timeout": 3600,
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
        # Publishing gives up quickly when Redis is unreachable: a web request must not hang on
        # it. What was being enqueued stays in the database and the sweeper re-sends it.
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    }
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_TASK_ALWAYS_EAGER = False
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
DJANGO_CELERY_BEAT_TZ_AWARE = True

# The one beat schedule. django-celery-beat copies it into the database on start, so admins
# see each entry, its last run and can pause it from the admin. Tasks are listed here as
# their apps add them.
CELERY_BEAT_SCHEDULE: dict = {
    # "name": {"task": "app.tasks.name", "schedule": timedelta(...) or crontab(...)},
    "seal-audit-checkpoint": {"task": "audit.tasks.seal_audit_checkpoint", "schedule": crontab(minute=0)},
    "verify-audit-chain": {"task": "audit.tasks.verify_audit_chain", "schedule": crontab(minute=30, hour=3)},
    # The daily run trusts the last verified signed checkpoint; once a week everything again, so an
    # edit before that checkpoint (stored hashes left alone) is found within the week.
    "verify-audit-chain-complete": {
        "task": "audit.tasks.verify_audit_chain_complete",
        "schedule": crontab(minute=30, hour=2, day_of_week="sun"),
    },
    "requeue-stale-queries": {"task": "investigations.requeue_stale_queries", "schedule": timedelta(minutes=1)},
    "purge-expired-results": {"task": "investigations.purge_expired_results", "schedule": crontab(hour=3, minute=17)},
    "expire-grants": {"task": "investigations.expire_grants", "schedule": timedelta(minutes=1)},
    "expire-pending-requests": {"task": "investigations.expire_pending_requests", "schedule": crontab(minute=5)},
    "warn-expiring-grants": {"task": "investigations.warn_expiring_grants", "schedule": crontab(minute=10)},
    "scan-oversight": {"task": "investigations.scan_oversight", "schedule": timedelta(minutes=1)},
    "deliver-mail": {"task": "investigations.deliver_mail", "schedule": timedelta(minutes=1)},
    "dispatch-streams": {"task": "audit.tasks.dispatch_streams", "schedule": timedelta(seconds=10)},
    "verify-evidence": {"task": "investigations.verify_evidence", "schedule": crontab(hour=4, minute=7)},
    "purge-closed-evidence": {"task": "investigations.purge_closed_evidence", "schedule": crontab(hour=3, minute=47)},
}
if not EMBEDDED:
    # Chains the events committed since the last run (audit.sealer); the oversight scan, the
    # streams, checkpoints and verification also seal first. SQLite chains at append time.
    CELERY_BEAT_SCHEDULE["seal-audit-events"] = {
        "task": "audit.tasks.seal_audit_events",
        "schedule": timedelta(seconds=10),
    }
    # The ledger's monthly partitions, made ahead (audit.partitions); SQLite has none.
    CELERY_BEAT_SCHEDULE["create-audit-partitions"] = {
        "task": "audit.tasks.create_audit_partitions",
        "schedule": crontab(hour=0, minute=23),
    }

# --- audit ledger ------------------------------------------------------------------------

# Ed25519 key that signs checkpoints: PEM, or base64 of the 32 raw private bytes. When it is
# not set, the key lives in AUDIT_SIGNING_KEY_FILE; on the embedded default that file is
# generated on first use (mode 0600). Production: set the key (or the file) explicitly and
# keep it away from database administrators.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
AUDIT_SIGNING_KEY_FILE = Path(env.str("AUDIT_SIGNING_KEY_FILE", default=str(VAR_DIR / "audit_signing_key.pem")))
AUDIT_SIGNING_KEY_AUTOGENERATE = env.bool("AUDIT_SIGNING_KEY_AUTOGENERATE", default=EMBEDDED)
# Public keys (base64 of the 32 raw bytes) that verify_audit trusts. Empty: the signing
# key's own public key. Pin them on the verifier's side.
AUDIT_VERIFY_KEYS = env.list("AUDIT_VERIFY_KEYS", default=[])
# Signed checkpoints go here, outside the database (ideally a separate, append-only mount).
AUDIT_CHECKPOINT_DIR = Path(env.str("AUDIT_CHECKPOINT_DIR", default=str(VAR_DIR / "checkpoints")))
# The log's identity, signed into every checkpoint and checked by the verifier.
AUDIT_LOG_ORIGIN = env.str("AUDIT_LOG_ORIGIN", default="custos.audit")
# An event not chained by the sealer after this long raises an oversight alert (a writer's
# transaction held open, or no worker sealing); verify_audit reports the age too.
AUDIT_SEAL_MAX_AGE_SECONDS = env.int("AUDIT_SEAL_MAX_AGE_SECONDS", default=60)
# Writers commit in any order, so an event's time may precede the previous event's in seq
# order by up to this much (the time a writer's INSERT statement takes); the verifier calls
# anything earlier back-dated.
AUDIT_TIME_SKEW_SECONDS = env.int("AUDIT_TIME_SKEW_SECONDS", default=60)
# Processes that verify_audit uses on a large ledger (PostgreSQL). 0: min(CPU count, 4); 1: one.
AUDIT_VERIFY_WORKERS = env.int("AUDIT_VERIFY_WORKERS", default=0)

# The ledger streamed to SIEMs and webhooks (docs/streams.md). Destinations are kept by staff
# in the admin, or here: AUDIT_STREAMS is a JSON list of {"name", "kind" (syslog|webhook),
# "url", "secret" or "secret_env", "ca_file", "action_prefixes"}.
AUDIT_STREAM = {
    "DESTINATIONS": env.json("AUDIT_STREAMS", default=[]),
    "BATCH": env.int("AUDIT_STREAM_BATCH", default=500),
    "TIMEOUT_SECONDS": env.float("AUDIT_STREAM_TIMEOUT_SECONDS", default=10),
    # Longer than a batch can take to send; a killed worker's lease runs out after it.
    "LEASE_SECONDS": env.int("AUDIT_STREAM_LEASE_SECONDS", default=120),
    "ALERT_AFTER_MINUTES": env.float("AUDIT_STREAM_ALERT_AFTER_MINUTES", default=15),
    "SYSLOG_HOSTNAME": env.str("AUDIT_STREAM_SYSLOG_HOSTNAME", default="custos"),
    # RFC 5424 structured-data id: name@<private enterprise number>; 32473 is the number
    # reserved for documentation (RFC 5612): put your organisation's here.
    "SYSLOG_SD_ID": env.str("AUDIT_STREAM_SYSLOG_SD_ID", default="custos@32473"),
    "SYSLOG_FACILITY": env.int("AUDIT_STREAM_SYSLOG_FACILITY", default=13),  # log audit
    "SYSLOG_SEVERITY": env.int("AUDIT_STREAM_SYSLOG_SEVERITY", default=5),  # notice
}

# Extra rows for the Schedules page and worker_health: callables returning dicts with
# name, state, detail, failing (so that operations imports no other app).
OPERATIONS_HEALTH_PROBES = ["audit.streams.health_probes", "investigations.notify.health_probes"]

# --- REST API ----------------------------------------------------------------------------

# The default cache holds what must hold across web processes: throttle counters, and the TOTP
# codes already accepted (allauth refuses a code seen in the cache: one use only). The embedded
# default keeps it in files under var/, shared by its processes on one machine; with several
# machines point CACHE_URL at Redis (e.g. redis://127.0.0.1:6379/1). A process-local cache
# (locmem) is reported by check --deploy (accounts.W002). Django's own Redis cache stays
# unmetered: django-prometheus's metered one imports django-redis, which Custos does not install
# (it made every process fail at start-up with a Redis CACHE_URL).
CACHES = {"default": env.cache_url("CACHE_URL", default=f"filecache://{VAR_DIR / 'cache'}")}
_METERED_CACHES = {
    "django.core.cache.backends.locmem.LocMemCache": "django_prometheus.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.filebased.FileBasedCache": "django_prometheus.cache.backends.filebased.FileBasedCache",
}
CACHES["default"]["BACKEND"] = _METERED_CACHES.get(CACHES["default"]["BACKEND"], CACHES["default"]["BACKEND"])

# --- metrics -----------------------------------------------------------------------------

# /metrics answers only with this bearer token and/or from these client networks (CIDR);
# with neither set it answers 404. See docs/operations.md.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
PROMETHEUS_EXPORT_MIGRATIONS = False

REST_FRAMEWORK = {
    # Token first: an unauthenticated call answers 401 with ``WWW-Authenticate: Token``.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        # A role that needs a second factor, none enrolled: 403 second_factor_required.
        "accounts.permissions.SecondFactorEnrolled",
    ],
    "DEFAULT_PARSER_CLASSES": ["investigations.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50),
    "DEFAULT_SCHEMA_CLASS": "investigations.api.schema.CustosAutoSchema",
    "EXCEPTION_HANDLER": "investigations.api.errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "query_submit": env.str("API_THROTTLE_QUERY_SUBMIT", default="30/minute"),
        "auth_token": env.str("API_THROTTLE_AUTH_TOKEN", default="10/minute"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Our throttles take the address from audit.context.client_ip; this keeps any other
    # throttle consistent with it.
    "NUM_PROXIES": CUSTOS_PROXY_COUNT,
}
# The largest JSON body the API reads; anything longer answers 413 before it is parsed.
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)

# django-rest-knox: tokens are stored as a SHA-512 digest and expire.
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.float("API_TOKEN_TTL_HOURS", default=10)),
    "TOKEN_LIMIT_PER_USER": env.int("API_TOKEN_LIMIT_PER_USER", default=20),
    "AUTO_REFRESH": False,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Custos API",
    "DESCRIPTION": (
        "Cases, data-pull requests, decisions, grants, audited queries and the audit trail, under the "
        "same permission chokepoints as the pages. Errors: 400 `{field: [message]}`; 401, 403, 404, 409, "
        "413 and 429 `{detail, code}`."
    ),
    "VERSION": CUSTOS_VERSION,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "CaseStatusEnum": "investigations.models.case.CaseStatus",
        "RequestStatusEnum": "investigations.models.request.RequestStatus",
        "GrantStatusEnum": "investigations.models.grant.GrantStatus",
        "QueryStatusEnum": "investigations.models.query.QueryStatus",
        "TaskStatusEnum": "investigations.models.task.TaskStatus",
        "CategoryEnum": "userdata.catalogue.CATEGORY_CHOICES",
        "EvidenceFormatEnum": "investigations.models.evidence.EvidenceFormat",
        "EvidenceKindEnum": "investigations.models.evidence.EvidenceKind",
        "IntegrityEnum": "investigations.models.evidence.Integrity",
    },
}

# --- logging -----------------------------------------------------------------------------

# LOG_FORMAT=json: one JSON object per line (for a log pipeline); plain is the default. Every
# record carries the request id, also in the Celery tasks a request enqueued.
LOG_FORMAT = env.str("LOG_FORMAT", default="plain")
LOG_FORMATTERS = {
    "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
    "json": {
        "()": "pythonjsonlogger.json.JsonFormatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(request_id)s %(process)d %(message)s",
        "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
    },
}
_LOG_FORMAT = LOG_FORMAT if LOG_FORMAT in LOG_FORMATTERS else "plain"
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "audit.context.RequestIdFilter"}},
    # Only the chosen formatter is configured: the JSON library loads only when it is used.
    "formatters": {_LOG_FORMAT: LOG_FORMATTERS[_LOG_FORMAT]},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": _LOG_FORMAT, "filters": ["request_id"]}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # django-axes narrates every attempt at INFO; the ledger has them. Its warnings still show.
    # WeasyPrint narrates each step of rendering a case report at INFO.
    "loggers": {"axes": {"level": "WARNING"}, "weasyprint": {"level": "WARNING"}, "fontTools": {"level": "WARNING"}},
}
