"""Settings of the test identity provider. The launcher (``server.py``) passes its folder,
port, RS256 key and the token of its testing endpoints in the environment."""

import os
from pathlib import Path

DATA_DIR = Path(os.environ["IDP_DATA_DIR"])
PORT = int(os.environ["IDP_PORT"])
ISSUER = f"http://127.0.0.1:{PORT}/o"
TESTING_TOKEN = os.environ["IDP_TESTING_TOKEN"]

SECRET_KEY = os.environ["IDP_TESTING_TOKEN"] + "-secret-key-of-the-test-identity-provider"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.oidc_provider.urls"
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "oauth2_provider",
    "tests.oidc_provider",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True, "OPTIONS": {}}]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "idp.sqlite3")}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # a test provider
USE_TZ = True
LOGIN_URL = "/login/"
# Its own cookie name: the browser keeps cookies per host, not per port, and Custos's session
# cookie on 127.0.0.1 must not be overwritten by the provider's.
SESSION_COOKIE_NAME = "idp_sessionid"
CSRF_COOKIE_NAME = "idp_csrftoken"

OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_RSA_PRIVATE_KEY": (DATA_DIR / "rs256.pem").read_text(),
    "OIDC_ISS_ENDPOINT": ISSUER,
    "PKCE_REQUIRED": True,
    "OAUTH2_VALIDATOR_CLASS": "tests.oidc_provider.validators.ClaimsValidator",
    "SCOPES": {
        "openid": "OpenID Connect",
        "profile": "Name and username",
        "email": "E-mail address",
        "groups": "Groups",
    },
}
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
