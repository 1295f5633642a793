import os
import subprocess
import sys

import pytest
from django.conf import settings

PRODUCTION_ENV = {
    "SECRET_KEY": "x" * 20 + "production-like-secret-key-with-enough-entropy-1234567890",
    "DEBUG": "false",
    "ALLOWED_HOSTS": "custos.example.org",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if key not in {"SECRET_KEY", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_refuse_to_start_without_secret_key(tmp_path):
    result = run_manage("check", env={"CUSTOS_ENV_FILE": str(tmp_path / "missing.env")})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_secret_key_is_read_from_the_env_file(tmp_path):
    env_file = tmp_path / "custom.env"
    env_file.write_text("SECRET_KEY=from-the-env-file-0123456789abcdefghijklmnopqrstuvwxyz\n")
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.SECRET_KEY)",
        env={"CUSTOS_ENV_FILE": str(env_file)},
    )
    assert result.returncode == 0, result.stderr
    assert "from-the-env-file" in result.stdout


def test_production_settings_pass_check_deploy(tmp_path):
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION_ENV, "CUSTOS_ENV_FILE": str(tmp_path / "none.env")},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_debug_defaults_to_false(tmp_path):
    result = run_manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.DEBUG)",
        env={"SECRET_KEY": "k" * 50, "CUSTOS_ENV_FILE": str(tmp_path / "none.env")},
    )
    assert result.stdout.strip().splitlines()[-1] == "False", result.stderr


def test_time_and_celery_settings():
    assert settings.USE_TZ and settings.TIME_ZONE == "UTC"
    assert "accounts.middleware.SessionAwareLoginRequiredMiddleware" in settings.MIDDLEWARE  # a LoginRequiredMiddleware
    assert settings.CELERY_TASK_SERIALIZER == "json"
    assert settings.CELERY_ACCEPT_CONTENT == ["json"]
    assert settings.CELERY_TASK_ACKS_LATE is True
    assert settings.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    assert settings.CELERY_TASK_TIME_LIMIT and settings.CELERY_TASK_SOFT_TIME_LIMIT < settings.CELERY_TASK_TIME_LIMIT
    assert settings.CELERY_TIMEZONE == "UTC"
    if settings.CELERY_BROKER_URL.startswith("redis"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        assert options["visibility_timeout"] > settings.CELERY_TASK_TIME_LIMIT
        assert options["socket_timeout"]


@pytest.mark.django_db(databases=["default", "userdata"])
def test_no_missing_migrations():
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("makemigrations", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_a_redis_cache_url_gives_a_working_cache_backend(tmp_path):
    # The documented way to share throttle counters between web processes; it once named a
    # metered backend whose module imports a package Custos does not install, so the web
    # process and the worker failed at start-up.
    result = run_manage(
        "shell",
        "-c",
        "from django.core.cache import caches; print(type(caches['default']).__module__)",
        env={**PRODUCTION_ENV, "CACHE_URL": "redis://127.0.0.1:6379/14"},
    )
    assert result.returncode == 0, result.stderr
    assert "redis" in result.stdout
