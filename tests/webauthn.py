"""A security key in software, for the tests that cannot use a browser: it answers WebAuthn's
``create()`` and ``get()`` the way a browser with a key would (a P-256 key pair, "none"
attestation, user present and verified), written here from the WebAuthn specification rather
than taken from the library under test. The browser journeys use Chromium's own virtual
authenticator instead.

Django's test client must be reached as ``localhost``: a WebAuthn origin is https, or
http://localhost (``Client(HTTP_HOST="localhost")``, ``ORIGIN``)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import struct

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2 import cbor

HOST = "localhost"
ORIGIN = f"http://{HOST}"

_USER_PRESENT, _USER_VERIFIED, _ATTESTED = 0x01, 0x04, 0x40


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SoftKey:
    """One authenticator holding one credential, for the relying party ``rp_id``."""

    def __init__(self, rp_id: str = HOST, origin: str = ORIGIN) -> None:
        self.rp_id = rp_id
        self.origin = origin
        self.private_key = ec.generate_private_key(ec.SECP256R1())
        self.credential_id = os.urandom(32)
        self.user_handle = b""
        self.counter = 0

    def _client_data(self, kind: str, challenge: str) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge, "origin": self.origin, "crossOrigin": False}).encode()

    def _auth_data(self, flags: int, attested: bytes = b"") -> bytes:
        self.counter += 1
        rp_id_hash = hashlib.sha256(self.rp_id.encode()).digest()
        return rp_id_hash + bytes([flags]) + struct.pack(">I", self.counter) + attested

    def _cose_public_key(self) -> bytes:
        numbers = self.private_key.public_key().public_numbers()
        return cbor.encode({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    def create(self, creation_options: dict) -> dict:
        """The answer to ``navigator.credentials.create(creation_options)`` (JSON form)."""
        public_key = creation_options["publicKey"]
        self.user_handle = _unb64(public_key["user"]["id"])
        attested = bytes(16) + struct.pack(">H", len(self.credential_id)) + self.credential_id + self._cose_public_key()
        auth_data = self._auth_data(_USER_PRESENT | _USER_VERIFIED | _ATTESTED, attested)
        attestation = cbor.encode({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {
            "id": _b64(self.credential_id),
            "rawId": _b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(self._client_data("webauthn.create", public_key["challenge"])),
                "attestationObject": _b64(attestation),
            },
            "clientExtensionResults": {},
        }

    def get(self, request_options: dict, *, challenge: str | None = None) -> dict:
        """The answer to ``navigator.credentials.get(request_options)`` (JSON form); ``challenge``
        signs another challenge than the one asked (a replay, or an answer made elsewhere)."""
        client_data = self._client_data("webauthn.get", challenge or request_options["publicKey"]["challenge"])
        auth_data = self._auth_data(_USER_PRESENT | _USER_VERIFIED)
        signature = self.private_key.sign(auth_data + hashlib.sha256(client_data).digest(), ec.ECDSA(hashes.SHA256()))
        return {
            "id": _b64(self.credential_id),
            "rawId": _b64(self.credential_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": _b64(client_data),
                "authenticatorData": _b64(auth_data),
                "signature": _b64(signature),
                "userHandle": _b64(self.user_handle),
            },
            "clientExtensionResults": {},
        }


def add_key(user, name: str = "Test key") -> SoftKey:
    """Give ``user`` a security key directly (as allauth stores one after the page's ceremony);
    the key, to answer challenges with."""
    from allauth.account.utils import user_pk_to_url_str
    from allauth.mfa.webauthn.internal.auth import WebAuthn

    key = SoftKey()
    user_id = _b64(user_pk_to_url_str(user).encode())
    options = {"publicKey": {"challenge": _b64(os.urandom(32)), "user": {"id": user_id}}}
    WebAuthn.add(user, name, key.create(options))
    return key


def step_up_answer(client, key: SoftKey) -> str:
    """What the step-up's "Use a security key" posts as ``step_up_credential``: the challenge
    asked of Custos, signed by ``key``."""
    from django.urls import reverse

    response = client.get(reverse("accounts:step_up_key"))
    assert response.status_code == 200, response.content[:300]
    return json.dumps(key.get(response.json()["request_options"]))
