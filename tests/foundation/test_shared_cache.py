"""The default cache is shared by the web processes: allauth keeps the TOTP codes already
accepted there (a code works once) and DRF its throttle counters. A process-local cache would
let a second web process accept the same code again, so check --deploy reports one."""

from __future__ import annotations

import os
import subprocess
import sys

from django.conf import settings as django_settings

from accounts.checks import shared_cache

SNIPPET = """
import django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
django.setup()
from django.core.cache import cache
if sys.argv[1] == "set":
    cache.set("allauth-code-seen", "y", 60)
else:
    print(cache.get("allauth-code-seen"))
"""


def _in_another_process(tmp_path, verb: str) -> str:
    env = {
        **os.environ,
        "CUSTOS_VAR_DIR": str(tmp_path),
        "SECRET_KEY": "a-secret-for-this-test-only-0123456789abcdefghij",
    }
    env.pop("CACHE_URL", None)
    done = subprocess.run(
        [sys.executable, "-c", SNIPPET, verb],
        env=env,
        cwd=django_settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip()


def test_the_embedded_default_cache_is_shared_between_processes(tmp_path):
    """With CACHE_URL unset, what one process writes (a code seen) another process reads."""
    _in_another_process(tmp_path, "set")
    assert _in_another_process(tmp_path, "get") == "y"


def test_check_deploy_reports_a_process_local_cache(settings, tmp_path):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [message.id for message in shared_cache(None)] == ["accounts.W002"]
    settings.CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache", "LOCATION": str(tmp_path)}
    }
    assert shared_cache(None) == []
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://x"}}
    assert shared_cache(None) == []
