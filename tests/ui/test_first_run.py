"""``make run``'s start and stop: migrations summarised, the logins printed last, Ctrl-C ends cleanly, a favicon."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

ROOT = Path(settings.BASE_DIR)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _embedded_env(tmp_path: Path) -> dict[str, str]:
    """What ``make run`` has: the embedded default (SQLite, filesystem broker) in a var dir of its own."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "USERDATA_DATABASE_URL", "CELERY_BROKER_URL")
    }
    return env | {"CUSTOS_VAR_DIR": str(tmp_path / "var"), "SECRET_KEY": settings.SECRET_KEY, "PORT": str(_free_port())}


def _read_until(process: subprocess.Popen, marker: str, limit: float) -> list[str]:
    lines, deadline = [], time.monotonic() + limit
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if marker in line:
            return lines
    raise AssertionError(f"{marker!r} never came; output:\n" + "\n".join(lines))


@pytest.mark.worker
def test_make_run_prints_the_logins_last_and_stops_cleanly_on_ctrl_c(tmp_path):
    env = _embedded_env(tmp_path)
    migrated = subprocess.run(
        [sys.executable, "manage.py", "migrate_all"], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    assert migrated.stdout.splitlines()[0].startswith("database default: ")
    assert all(line.startswith("database ") for line in migrated.stdout.splitlines())  # one line per database
    run = subprocess.Popen(
        [sys.executable, "-m", "config.run"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        started = _read_until(run, "Custos is running on", limit=120)
        started += _read_until(run, "adam", limit=5)
        run.send_signal(signal.SIGINT)  # what the terminal's Ctrl-C sends (the processes have sessions of their own)
        stopped, _ = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert started[-7].startswith("Demo logins"), "the logins are the last thing printed"
    output = "\n".join(started) + stopped
    assert run.returncode == 0, output
    assert stopped.strip().endswith("| stopped."), output
    for trouble in ("ERROR", "Traceback", "SIGKILL", "killing", "Error"):
        assert trouble not in output, output


def test_pages_carry_a_favicon(client):
    assert finders.find("img/favicon.svg")
    html = client.get("/accounts/login/").content.decode()
    assert '<link rel="icon" href="/static/img/favicon.svg" type="image/svg+xml">' in html
