"""With its database out of reach, Custos answers 503 with Retry-After, never a 500.

A real server process (gunicorn, as in production) whose DATABASE_URL points at a database
that cannot be reached: on PostgreSQL a port with nothing listening, on SQLite a file that
cannot be opened. Nothing in the driver is mocked. The user-data store and the broker stay
reachable, so ``/health`` must name the database alone.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections

from config.views import DATABASE_UNAVAILABLE
from custos_testing.worker import free_port, worker_environment

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def unreachable_database_url() -> str:
    if connections["default"].vendor == "postgresql":
        return f"postgres://postgres@127.0.0.1:{free_port()}/custos_nowhere"
    return "sqlite:////nonexistent-directory/custos.sqlite3"


@pytest.fixture
def server_without_database(tmp_path: Path):
    port = free_port()
    env = {**worker_environment(), "DATABASE_URL": unreachable_database_url(), "DEBUG": "False"}
    log = (tmp_path / "gunicorn.log").open("ab")
    command = [sys.executable, "-m", "gunicorn", "config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    process = subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=settings.BASE_DIR, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "gunicorn.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)


def fetch(url: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {}, data=body)  # noqa: S310 (http only)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def test_api_pages_and_health_answer_503_with_retry_after(server_without_database):
    base = server_without_database
    api_calls = [
        ("GET", "/api/v1/me/", {"Authorization": "Token 0123456789abcdef"}, None),
        ("GET", "/api/v1/cases/", {"Authorization": "Token 0123456789abcdef"}, None),
        (
            "POST",
            "/api/v1/auth/token/",
            {"Content-Type": "application/json"},
            json.dumps({"username": "lead", "password": "whatever-it-is"}).encode(),
        ),
    ]
    for method, path, headers, body in api_calls:
        status, answer_headers, content = fetch(base + path, method=method, headers=headers, body=body)
        assert status == 503, (path, status, content[:300])
        assert answer_headers["Content-Type"].startswith("application/json"), path
        assert json.loads(content) == DATABASE_UNAVAILABLE, path
        assert int(answer_headers["Retry-After"]) > 0, path

    # A page for someone with a session: the session cannot be read.
    status, headers, content = fetch(base + "/cases/", headers={"Cookie": "sessionid=abcdefghijklmnop"})
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert headers["Content-Type"].startswith("text/html")
    assert b"Custos is unavailable for a moment" in content and b"Traceback" not in content

    status, headers, content = fetch(base + "/health")
    assert status == 503 and int(headers["Retry-After"]) > 0
    assert json.loads(content) == {
        "status": "unavailable",
        "dependencies": {"database": "unavailable", "userdata": "ok", "broker": "ok"},
    }


def test_health_is_ok_when_every_dependency_answers(client):
    response = client.get("/health")
    assert response.status_code == 200 and "Retry-After" not in response.headers
    assert response.json() == {
        "status": "ok",
        "dependencies": {"database": "ok", "userdata": "ok", "broker": "ok"},
    }
    assert "no-store" in response.headers["Cache-Control"] or "max-age=0" in response.headers["Cache-Control"]
