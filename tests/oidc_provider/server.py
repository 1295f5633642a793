"""Start the test identity provider as a real server process and set up its users."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.oidc_provider.settings"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rs256_key() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


class IdentityProvider:
    """One provider process on 127.0.0.1: ``start()``, then ``add_user()``, ``register_client()``;
    ``sign_in()`` plays a person at its sign-in page (for tests without a browser)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.port = free_port()
        self.token = secrets.token_urlsafe(24)
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/o"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": SETTINGS,
            "IDP_DATA_DIR": str(self.folder),
            "IDP_PORT": str(self.port),
            "IDP_TESTING_TOKEN": self.token,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, timeout: float = 60) -> IdentityProvider:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "rs256.pem").write_bytes(rs256_key())
        django = [sys.executable, "-m", "django"]
        subprocess.run([*django, "migrate", "--verbosity", "0"], env=self.environment(), cwd=ROOT, check=True)
        log = (self.folder / "server.log").open("ab")
        self.process = subprocess.Popen(
            [*django, "runserver", f"127.0.0.1:{self.port}", "--noreload", "--skip-checks"],
            env=self.environment(),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the identity provider exited; see {self.folder / 'server.log'}")
            try:
                if requests.get(f"{self.issuer}/.well-known/openid-configuration", timeout=2).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the identity provider did not answer within {timeout} s")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _post(self, path: str, body: dict) -> dict:
        response = requests.post(
            f"{self.url}{path}", json=body, headers={"Authorization": f"Bearer {self.token}"}, timeout=10
        )
        response.raise_for_status()
        return response.json()

    def add_user(self, username: str, password: str, **fields) -> str:
        """Create a user at the provider, or change one (``rename_to``, ``email``, ``groups``,
        ``second_factor``, ``acr``, ...). Returns its ``sub``."""
        return self._post("/_testing/users/", {"username": username, "password": password, **fields})["sub"]

    def change_user(self, username: str, **fields) -> str:
        return self._post("/_testing/users/", {"username": username, **fields})["sub"]

    def register_client(self, client_id: str, client_secret: str, redirect_uris: list[str]) -> None:
        self._post(
            "/_testing/clients/",
            {"client_id": client_id, "client_secret": client_secret, "redirect_uris": redirect_uris},
        )

    def sign_in(self, authorize_url: str, username: str, password: str) -> str:
        """Open the authorisation URL in a fresh session, sign in at the provider's page and
        return the URL the provider sends the browser back to (the client's callback, with the
        code, or an error)."""
        session = requests.Session()
        response = session.get(authorize_url, timeout=10)  # to the sign-in page, with ?next=
        csrf = session.cookies.get("idp_csrftoken")
        next_url = parse_qs(urlsplit(response.url).query).get("next", [""])[0]
        response = session.post(
            f"{self.url}/login/",
            data={"username": username, "password": password, "next": next_url, "csrfmiddlewaretoken": csrf},
            headers={"Referer": response.url},
            allow_redirects=False,
            timeout=10,
        )
        while response.status_code in (301, 302, 303, 307, 308):
            location = urljoin(response.url, response.headers["Location"])
            if not location.startswith(self.url):
                return location
            response = session.get(location, allow_redirects=False, timeout=10)
        raise AssertionError(
            f"the provider did not send the browser back: {response.status_code} {response.text[:300]}"
        )
