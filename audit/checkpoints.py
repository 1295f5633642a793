"""Signed checkpoints: (sequence, head hash, time), signed with Ed25519, kept outside the database.

A checkpoint file is JSON::

    {"version": 1, "origin": "custos.audit", "seq": 1234, "head": "<64 hex>",
     "sealed_at": "2026-01-01T10:00:00.000000Z", "key": "<base64 public key>",
     "signature": "<base64 Ed25519 signature>"}

The signature covers the UTF-8 bytes of::

    custos.audit.checkpoint.v1\\n<origin>\\n<seq>\\n<head>\\n<sealed_at>\\n

The ``key`` field is informational; the verifier only accepts signatures by keys it
trusts (``AUDIT_VERIFY_KEYS``, default: the signing key's public key) and only the
configured origin. Files are created exclusively (never overwritten) and made read-only.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.utils import timezone

from .events import Action
from .ledger import format_time, record
from .models import ChainHead

CHECKPOINT_DOMAIN = "custos.audit.checkpoint.v1"
FILE_PATTERN = "checkpoint-*.json"
PUBLIC_KEY_FILE = "public-key.txt"


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    head: str
    sealed_at: str
    origin: str
    signature: str
    key: str = ""
    path: str = ""

    def message(self) -> bytes:
        return f"{CHECKPOINT_DOMAIN}\n{self.origin}\n{self.seq}\n{self.head}\n{self.sealed_at}\n".encode()

    def as_json(self) -> dict:
        return {
            "version": 1,
            "origin": self.origin,
            "seq": self.seq,
            "head": self.head,
            "sealed_at": self.sealed_at,
            "key": self.key,
            "signature": self.signature,
        }


# --- keys --------------------------------------------------------------------------------


def _key_from_text(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    if text.startswith("-----BEGIN"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
    else:
        key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text))
    if not isinstance(key, Ed25519PrivateKey):
        raise ImproperlyConfigured("AUDIT_SIGNING_KEY must be an Ed25519 private key")
    return key


def _generate_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return  # another process made it first
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)


def signing_key() -> Ed25519PrivateKey:
    """The checkpoint signing key from settings (generated on first use if allowed)."""
    if settings.AUDIT_SIGNING_KEY:
        return _key_from_text(settings.AUDIT_SIGNING_KEY)
    path = Path(settings.AUDIT_SIGNING_KEY_FILE)
    if not path.exists():
        if not settings.AUDIT_SIGNING_KEY_AUTOGENERATE:
            raise ImproperlyConfigured("set AUDIT_SIGNING_KEY or AUDIT_SIGNING_KEY_FILE to an Ed25519 private key")
        _generate_key_file(path)
    return _key_from_text(path.read_text())


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()


def published_public_key() -> str:
    """The base64 public key verifiers should pin."""
    return public_key_text(signing_key().public_key())


def trusted_keys() -> list[Ed25519PublicKey]:
    if settings.AUDIT_VERIFY_KEYS:
        return [Ed25519PublicKey.from_public_bytes(base64.b64decode(text)) for text in settings.AUDIT_VERIFY_KEYS]
    return [signing_key().public_key()]


# --- sealing -----------------------------------------------------------------------------


def _write_exclusive(path: Path, content: bytes, mode: int = 0o444) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(path, mode)


def publish_public_key(directory: Path) -> Path:
    path = directory / PUBLIC_KEY_FILE
    text = (published_public_key() + "\n").encode()
    if not path.exists():
        _write_exclusive(path, text)
    return path


def seal(directory: Path | None = None) -> Checkpoint:
    """Sign the current committed head, write it outside the database, record it in the ledger.

    The events committed so far are sealed first (``audit.sealer``); the head is then read
    without locking: it is a committed state, so everything up to it is durable. The
    checkpoint event itself comes after the sealed sequence number.
    """
    from .sealer import seal_first

    seal_first()
    directory = Path(directory or settings.AUDIT_CHECKPOINT_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first() or (0, "0" * 64)
    key = signing_key()
    unsigned = Checkpoint(
        seq=head[0],
        head=head[1],
        sealed_at=format_time(timezone.now()),
        origin=settings.AUDIT_LOG_ORIGIN,
        signature="",
        key=public_key_text(key.public_key()),
    )
    signature = base64.b64encode(key.sign(unsigned.message())).decode()
    checkpoint = Checkpoint(**{**unsigned.__dict__, "signature": signature})
    name = f"checkpoint-{checkpoint.seq:012d}-{checkpoint.sealed_at.replace(':', '')}.json"
    path = directory / name
    _write_exclusive(path, json.dumps(checkpoint.as_json(), sort_keys=True).encode() + b"\n")
    publish_public_key(directory)
    with transaction.atomic():
        record(
            action=Action.AUDIT_CHECKPOINT,
            details={**checkpoint.as_json(), "file": name},
        )
    return Checkpoint(**{**checkpoint.__dict__, "path": str(path)})


# --- reading -----------------------------------------------------------------------------


class CheckpointError(Exception):
    def __init__(self, seq: int | None, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


def from_json(raw: dict, path: str) -> Checkpoint:
    """A checkpoint from its JSON document (a file, or a line of an archive's export); raises
    KeyError, TypeError or ValueError for a malformed one."""
    return Checkpoint(
        seq=int(raw["seq"]),
        head=str(raw["head"]),
        sealed_at=str(raw["sealed_at"]),
        origin=str(raw["origin"]),
        signature=str(raw["signature"]),
        key=str(raw.get("key", "")),
        path=path,
    )


def load(path: Path) -> Checkpoint:
    try:
        return from_json(json.loads(path.read_text()), str(path))
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CheckpointError(None, f"checkpoint {path.name} is unreadable: {error}") from error


def check_signature(checkpoint: Checkpoint, keys: list[Ed25519PublicKey], origin: str) -> None:
    if checkpoint.origin != origin:
        raise CheckpointError(
            checkpoint.seq, f"checkpoint {Path(checkpoint.path).name} is for origin {checkpoint.origin!r}"
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
    except ValueError as error:
        raise CheckpointError(
            checkpoint.seq, f"checkpoint {Path(checkpoint.path).name} has a malformed signature"
        ) from error
    for key in keys:
        try:
            key.verify(signature, checkpoint.message())
            return
        except InvalidSignature:
            continue
    raise CheckpointError(
        checkpoint.seq, f"checkpoint {Path(checkpoint.path).name} is not signed by a trusted key (forged or altered)"
    )


def load_verified(directory: Path) -> list[Checkpoint]:
    """All checkpoints in ``directory``, signature-checked, oldest first.

    Raises :class:`CheckpointError` for the lowest-sequence checkpoint that fails.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    keys = trusted_keys()
    origin = settings.AUDIT_LOG_ORIGIN
    checkpoints = sorted((load(path) for path in directory.glob(FILE_PATTERN)), key=lambda c: c.seq)
    for checkpoint in checkpoints:
        check_signature(checkpoint, keys, origin)
    return checkpoints
