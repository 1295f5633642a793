"""TOTP codes computed in the tests (RFC 6238, SHA-1, 6 digits, 30 s), written here from the
RFC rather than taken from the library under test."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time

# Codes each secret has already used: Custos accepts a code once, so a second sign-in within
# the same window takes the code of a neighbouring step (the tolerance is one step each side).
_USED: set[tuple[str, str]] = set()


def totp(secret: str, at: float | None = None, step: int = 30) -> str:
    counter = int((time.time() if at is None else at) // step)
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = (struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF) % 1_000_000
    return f"{value:06d}"


def fresh_code(secret: str) -> str:
    """A code accepted now and not used before in this test run."""
    while True:
        now = time.time()
        for shift in (0, -30, 30):
            code = totp(secret, now + shift)
            if (secret, code) not in _USED:
                _USED.add((secret, code))
                return code
        time.sleep(30 - now % 30 + 0.1)
