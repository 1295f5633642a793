"""Test settings: only what tests must override."""

import os
from datetime import timedelta

os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-0123456789abcdef")

from .settings import *  # noqa: F403

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast; tests only
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "custos-tests"}}
AUDIT_SIGNING_KEY_AUTOGENERATE = True  # tests (and their worker processes) make their own key

# Worker processes started by the reliability tests: mail they send goes to files the test
# counts (locmem lives inside the worker), and beat runs only the entries named, every few
# seconds: CUSTOS_TEST_BEAT="expire-grants=2,warn-expiring-grants=2".
if os.environ.get("CUSTOS_TEST_EMAIL_DIR"):
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = os.environ["CUSTOS_TEST_EMAIL_DIR"]
if os.environ.get("CUSTOS_TEST_BEAT"):
    _every = dict(item.split("=") for item in os.environ["CUSTOS_TEST_BEAT"].split(","))
    CELERY_BEAT_SCHEDULE = {
        name: {**entry, "schedule": timedelta(seconds=int(_every[name]))}
        for name, entry in CELERY_BEAT_SCHEDULE.items()  # noqa: F405
        if name in _every
    }
