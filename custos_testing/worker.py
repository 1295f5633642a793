"""Start and stop a real Celery worker process for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections


def _database_url(alias: str) -> str:
    """The URL of the *test* database behind ``alias`` (pytest-django renamed it)."""
    config = connections[alias].settings_dict
    if config["ENGINE"].endswith(".sqlite3"):
        return f"sqlite:///{config['NAME']}"
    user = config.get("USER") or ""
    password = f":{config['PASSWORD']}" if config.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    host = config.get("HOST") or "127.0.0.1"
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"postgres://{auth}{host}{port}/{config['NAME']}"


def _current_broker_url() -> str:
    from config.celery import app

    return app.conf.broker_url or settings.CELERY_BROKER_URL


def worker_environment() -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url("default"),
        "USERDATA_DATABASE_URL": _database_url("userdata"),
        "CELERY_BROKER_URL": _current_broker_url(),
        "CUSTOS_VAR_DIR": str(settings.VAR_DIR),
        "PYTHONUNBUFFERED": "1",
    }
    return env


@contextmanager
def broker(url: str):
    """Send this process's tasks to ``url`` for a while (e.g. a private Redis a test stops and starts)."""
    from config.celery import app

    # Celery reads CELERY_BROKER_URL from the environment before its own setting.
    previous = app.conf.get("broker_url"), os.environ.get("CELERY_BROKER_URL")
    app.conf.broker_url = os.environ["CELERY_BROKER_URL"] = url
    _drop_connections(app)
    try:
        yield
    finally:
        app.conf.broker_url = previous[0]
        if previous[1] is None:
            os.environ.pop("CELERY_BROKER_URL", None)
        else:
            os.environ["CELERY_BROKER_URL"] = previous[1]
        _drop_connections(app)


def _drop_connections(app) -> None:
    # Celery caches its connection and producer pools on first use; drop them so that the
    # next publish connects to the broker now configured
    # (the same reset Celery does after a fork).
    app._pool = None
    if "amqp" in app.__dict__:
        app.__dict__["amqp"]._producer_pool = None


def purge_broker() -> None:
    """Drop messages left on the broker by earlier runs, so a new worker starts clean."""
    from config.celery import app

    app.control.purge()


def sent_on_the_broker(task: str) -> list[tuple[list, bool]]:
    """The messages of ``task`` waiting on the configured broker, taken off it: (args, has an ETA).
    Messages of other tasks are taken off too."""
    from config.celery import app

    found = []
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(app.conf.task_default_queue)
        try:
            while True:
                try:
                    message = queue.get(block=False)
                except queue.Empty:
                    break
                if message.headers.get("task") == task:
                    found.append((message.payload[0], message.headers.get("eta") is not None))
                message.ack()
        finally:
            queue.close()
    return found


class CeleryWorker:
    def __init__(
        self,
        *,
        log_path: Path,
        beat: bool = False,
        include: tuple[str, ...] = ("tests.worker_tasks",),
        env: dict[str, str] | None = None,
        name: str = "test",
    ):
        self.log_path = log_path
        self.beat = beat
        self.include = include
        self.env = env or {}
        self.name = name
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
            f"{self.name}-{os.getpid()}@%h",
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
            env={**worker_environment(), **self.env},
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


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """A private ``redis-server`` without persistence, for tests that stop and restart Redis.

    Never the shared one: stopping it loses every message it held, as a crash of a Redis
    without AOF would.
    """

    def __init__(self, *, log_path: Path, port: int | None = None):
        self.log_path = log_path
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 20) -> None:
        import redis

        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--daemonize", "no"]
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited early:\n{self.log_path.read_text(errors='replace')}")
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"redis-server not ready after {timeout}s")

    def stop(self) -> None:
        """Stop it; whatever it held is gone (no persistence)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.kill()
        self.process.wait(timeout=30)


WAIT_SECONDS = 120  # a busy 2-core machine with a worker starting: generous, never a speed target


def wait_for(predicate: Callable, what: str, *workers: CeleryWorker, seconds: float = WAIT_SECONDS):
    """Poll ``predicate`` until it returns something truthy (returned); fail with the workers' logs."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    logs = "\n".join(worker.log()[-3000:] for worker in workers)
    pytest.fail(f"{what} did not happen within {seconds} s; worker logs:\n{logs}")
