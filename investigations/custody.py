"""The mechanics of evidence custody: hashing, sniffing, naming and storing files.

No rules about who may do what live here (``access.py``) and no state changes
(``actions/evidence.py``): only what a file is, and where its bytes are.

* The SHA-256 is computed by Custos from the bytes, chunk by chunk as an upload streams in
  (``HashingUploadHandler``), never taken from the client.
* The content type is sniffed from the first bytes (``puremagic`` for binary formats, a strict
  check for text), never taken from the client's ``Content-Type`` or the file name.
* The stored object's name is made up here (``cases/<case>/<random>``); the uploader's name is
  only kept, sanitised, for display and for the download's suggested name.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import uuid
from dataclasses import dataclass
from typing import IO

import puremagic
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import Storage, storages
from django.core.files.uploadhandler import TemporaryFileUploadHandler

CHUNK = 64 * 1024
HEAD = 8 * 1024
NAME_MAX = 120
UNKNOWN_BINARY = "application/octet-stream"
# Text that a browser would run or render as a page (never accepted, whatever the allow-list).
ACTIVE_TEXT = (b"<!doctype html", b"<html", b"<script", b"<svg", b"<?xml", b"<iframe", b"<body")


def storage() -> Storage:
    return storages["evidence"]


def max_bytes() -> int:
    return settings.EVIDENCE["MAX_BYTES"]


# --- hashing ------------------------------------------------------------------------------


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes an upload to a temporary file and hashes it as the chunks arrive.

    Past ``EVIDENCE["MAX_BYTES"]`` the rest is counted, neither kept nor hashed: the file's
    ``size`` says how much was sent, and the action refuses it. The handler sets ``sha256``
    on the file it hands over; Custos computed it, so the action can trust it.
    """

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self.received += len(raw_data)
        if self.received <= max_bytes():
            self.digest.update(raw_data)
            self.file.write(raw_data)
        return None

    def file_complete(self, file_size: int):
        upload = super().file_complete(file_size)
        upload.size = self.received
        upload.sha256 = self.digest.hexdigest() if self.received <= max_bytes() else ""
        return upload


@dataclass(frozen=True)
class Fingerprint:
    sha256: str
    size: int


def fingerprint(stream: IO[bytes]) -> Fingerprint:
    """SHA-256 and size of everything ``stream`` yields from where it is, read in chunks."""
    digest, size = hashlib.sha256(), 0
    for chunk in iter(lambda: stream.read(CHUNK), b""):
        digest.update(chunk)
        size += len(chunk)
    return Fingerprint(digest.hexdigest(), size)


def fingerprint_upload(upload: File) -> Fingerprint:
    """The upload's fingerprint: the one taken while it streamed in, or computed now."""
    if getattr(upload, "sha256", ""):
        return Fingerprint(upload.sha256, upload.size)
    upload.seek(0)
    found = fingerprint(upload)
    upload.seek(0)
    return found


# --- sniffing -----------------------------------------------------------------------------


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 3:  # not merely a character cut at the end of the sample
            return False
        text = head[: error.start].decode("utf-8")
    return not any(unicodedata.category(char) == "Cc" and char not in "\t\n\r\f" for char in text)


def _text_type(head: bytes, name: str) -> str:
    lowered = head.lower()
    if any(marker in lowered for marker in ACTIVE_TEXT):
        return "text/html"
    first = head.lstrip()[:1]
    if name.lower().endswith(".json") and first in (b"{", b"["):
        return "application/json"
    if name.lower().endswith(".csv"):
        return "text/csv"
    if name.lower().endswith(".eml") and re.match(rb"(?i)^[\w-]+: ", head):
        return "message/rfc822"
    return "text/plain"


def sniff(head: bytes, name: str = "") -> str:
    """The content type of a file from its first bytes; the name only picks among text types.

    A binary format known to ``puremagic`` gives its type; bytes it recognises without a
    type, or does not recognise and that are not clean UTF-8 text, are ``application/octet-stream``.
    """
    if not head:
        return "application/x-empty"
    try:
        matches = puremagic.magic_string(head)
    except (puremagic.PureError, ValueError):
        matches = []
    typed = [match for match in matches if match.mime_type]
    if typed and not (typed[0].mime_type.startswith("text/") and _is_text(head)):
        return typed[0].mime_type
    if _is_text(head):
        return _text_type(head, name)
    return UNKNOWN_BINARY


def sniff_upload(upload: File, name: str) -> str:
    upload.seek(0)
    head = upload.read(HEAD)
    upload.seek(0)
    return sniff(head, name)


def allowed_types() -> list[str]:
    return list(settings.EVIDENCE["ALLOWED_TYPES"])


# --- names --------------------------------------------------------------------------------

_UNSAFE = re.compile(r"[^\w .()+,-]+", re.UNICODE)


def clean_filename(name: str) -> str:
    """A display name safe anywhere: no directories, control characters, or leading dots.

    ``../../etc/passwd`` → ``passwd``; ``C:\\x\\evil.pdf`` → ``evil.pdf``; ``a\\x00b.pdf`` → ``a_b.pdf``.
    The extension is kept when the name is cut to ``NAME_MAX``.
    """
    name = unicodedata.normalize("NFKC", str(name or ""))
    name = re.split(r"[/\\]", name)[-1]
    name = "".join("_" if unicodedata.category(char)[0] == "C" else char for char in name)
    name = re.sub(r"_+", "_", _UNSAFE.sub("_", name)).strip(" ._")
    if len(name) > NAME_MAX:
        stem, dot, extension = name.rpartition(".")
        extension = extension[:16] if dot and stem else ""
        name = name[: NAME_MAX - len(extension) - 1].rstrip(" .") + ("." + extension if extension else "")
    return name or "evidence"


# --- storing ------------------------------------------------------------------------------


def store(case_id: int, content: File) -> str:
    """Save ``content`` under a fresh name of Custos's own; returns the name the storage used."""
    content.seek(0)
    return storage().save(f"cases/{int(case_id)}/{uuid.uuid4().hex}", content)


def discard(name: str) -> None:
    """Remove a file whose item was never written (the action failed after storing it)."""
    if name:
        storage().delete(name)


def rehash(name: str) -> Fingerprint | None:
    """The stored file's fingerprint now, or None if it is gone."""
    try:
        if not storage().exists(name):
            return None
        with storage().open(name, "rb") as handle:
            return fingerprint(handle)
    except FileNotFoundError:
        return None
