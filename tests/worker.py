"""Start and stop a real Celery worker process for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connections


def _database_url(alias: str) -> str:
    """The URL of the *test* database behind ``alias`` (pytest-django renamed it)."""
    config = connections[alias].settings_dict
    if config["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "127.0.0.1"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{config['NAME']}"


def worker_environment() -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url("default"),
        "USERDATA_DATABASE_URL": _database_url("userdata"),
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CUSTOS_VAR_DIR": str(settings.VAR_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    return env


def purge_broker() -> None:
    """Drop messages left on the broker by earlier runs, so a new worker starts clean."""
    from config.celery import app

    app.control.purge()


class CeleryWorker:
    def __init__(self, *, log_path: Path, beat: bool = False, include: tuple[str, ...] = ("tests.worker_tasks",)):
        self.log_path = log_path
        self.beat = beat
        self.include = include
        self.process: subprocess.Popen | None = None

    @property
    def command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--loglevel=INFO",
            "--concurrency=1",
            "--pool=prefork",
            "--without-gossip",
            "--without-mingle",
            "--hostname",
            f"test-{os.getpid()}@%h",
        ]
        if self.include:
            command += ["--include", ",".join(self.include)]
        if self.beat:
            command += ["--beat", "--schedule", str(self.log_path.with_suffix(".beat"))]
        return command

    def start(self, timeout: float = 60) -> None:
        purge_broker()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            env=worker_environment(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=settings.BASE_DIR,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log()}")
            if b" ready." in self.log_path.read_bytes():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def child_pids(self) -> list[int]:
        """Pids of the pool processes (the ones that run tasks)."""
        output = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in output.split()]

    def kill_hard(self) -> None:
        """``kill -9`` the whole worker (main process and pool), as a crash would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
