"""Verify the ledger: recompute every hash, check continuity, agree with signed checkpoints.

Fast by construction: one streamed query of plain tuples (a server-side cursor, no model
instances), one pass, and a loop that hashes without per-row helper calls. On PostgreSQL
the database formats ``occurred_at`` with the same ``to_char`` the append uses, so no
datetime is parsed or formatted in Python; the canonical JSON of the payload is encoded
with one encoder built once. The encoding is the ledger's (``audit.ledger``); a test pins
this loop to ``audit.ledger.hash_values``.
"""

from __future__ import annotations

import hashlib
import json
import json.scanner
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection
from tqdm import tqdm

from . import checkpoints as checkpoint_store
from .ledger import EVENT_DOMAIN, GENESIS_HASH, HASHED_FIELDS, PAYLOAD_DOMAIN, PAYLOAD_FIELDS, format_time
from .models import AuditEvent, ChainHead

CHUNK_SIZE = 10_000


@dataclass(frozen=True)
class Verification:
    ok: bool
    count: int
    head_seq: int
    head_hash: str
    bad_seq: int | None = None
    reason: str = ""
    checkpoints: int = 0

    def summary(self) -> str:
        if self.ok:
            return f"OK {self.count} events verified, head #{self.head_seq} {self.head_hash}"
        return f"FAILED at seq {self.bad_seq}: {self.reason}"

    def as_json(self) -> dict:
        return {
            "ok": self.ok,
            "count": self.count,
            "head_seq": self.head_seq,
            "head_hash": self.head_hash,
            "bad_seq": self.bad_seq,
            "reason": self.reason,
            "checkpoints": self.checkpoints,
        }


class ChainBroken(Exception):
    def __init__(self, seq: int | None, reason: str):
        super().__init__(reason)
        self.seq = seq
        self.reason = reason


# Rows as (seq, occurred_at as canonical text, *payload, prev_hash, hash). ``details`` is
# decoded JSON. On PostgreSQL the time is formatted by the same expression the append hashes.
_POSTGRES_ROWS = """
SELECT seq, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'), {payload}, prev_hash, hash
  FROM audit_auditevent WHERE seq >= %s ORDER BY seq
""".format(payload=", ".join(PAYLOAD_FIELDS))


def _rows(from_seq: int) -> Iterator[Sequence]:
    if connection.vendor == "postgresql":
        return _postgres_rows(from_seq)
    return _orm_rows(from_seq)


def _orm_rows(from_seq: int) -> Iterator[tuple]:
    columns = (*HASHED_FIELDS, "hash")
    queryset = AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq").values_list(*columns)
    for row in queryset.iterator(chunk_size=CHUNK_SIZE):
        yield (row[0], format_time(row[1]), *row[2:])


def _postgres_rows(from_seq: int) -> Iterator[tuple]:
    """Raw rows: Django's psycopg setup hands ``details`` (jsonb) over as text; the loop decodes it."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(_POSTGRES_ROWS, [from_seq])
        while chunk := cursor.fetchmany(CHUNK_SIZE):
            yield from chunk


def _json_decoder() -> Callable[[str], object]:
    """``json.loads`` without its per-call wrapping (whitespace regex, decoder lookup)."""
    scan = json.scanner.make_scanner(json.JSONDecoder())

    def decode(text: str) -> object:
        try:
            value, end = scan(text, 0)
        except StopIteration:  # leading whitespace or not JSON: let json.loads decide
            return json.loads(text)
        return value if end == len(text) else json.loads(text)

    return decode


def _payload_encoder() -> Callable[[list], str]:
    """``json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``, built once.

    ``json.dumps`` with options builds a new encoder on every call, which costs more than the
    encoding of a small payload. Same output (a test compares them).
    """
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, check_circular=False)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    iterencode = make(
        None, encoder.default, json.encoder.encode_basestring_ascii, None, ":", ",", True, False, True
    )  # markers, default, encoder, indent, key_separator, item_separator, sort_keys, skipkeys, allow_nan
    return lambda values: "".join(iterencode(values, 0))


def _starting_point(from_seq: int) -> tuple[str, str | None]:
    if from_seq <= 1:
        return GENESIS_HASH, None
    before = AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", "occurred_at").first()
    if before is None:
        raise ChainBroken(from_seq - 1, "the event before --from is missing")
    return before[0], format_time(before[1])


def _check_rows(
    rows: Iterable[Sequence], from_seq: int, prev_hash: str, prev_time: str | None, anchors: dict[int, tuple[str, str]]
) -> tuple[int, int, str]:
    """Check every row in order; returns (count, last seq, last hash) or raises ChainBroken.

    Times are compared as canonical text (fixed width, so text order is time order).
    """
    sha256, encode, decode = hashlib.sha256, _payload_encoder(), _json_decoder()
    payload_end, details = 2 + len(PAYLOAD_FIELDS), PAYLOAD_FIELDS.index("details")
    expected_seq, count = from_seq, 0
    try:
        for row in rows:
            seq, occurred_at, stored_prev, stored_hash = row[0], row[1], row[-2], row[-1]
            if seq != expected_seq:
                raise ChainBroken(expected_seq, f"sequence gap: expected {expected_seq}, found {seq} (events missing)")
            if stored_prev != prev_hash:
                raise ChainBroken(
                    seq, "prev_hash does not match the previous event's hash (deleted, inserted or reordered)"
                )
            values = list(row[2:payload_end])
            if type(values[details]) is str:
                values[details] = decode(values[details])
            payload = PAYLOAD_DOMAIN + encode(values).encode("ascii")
            message = f"{EVENT_DOMAIN}\n{stored_prev}\n{seq}\n{occurred_at}\n{sha256(payload).hexdigest()}"
            if sha256(message.encode("ascii")).hexdigest() != stored_hash:
                raise ChainBroken(seq, "hash mismatch: the event's content was changed")
            if prev_time is not None and occurred_at < prev_time:
                raise ChainBroken(seq, "timestamp earlier than the previous event's (back-dated)")
            anchor = anchors.get(seq)
            if anchor is not None and anchor[0] != stored_hash:
                raise ChainBroken(seq, f"hash differs from the {anchor[1]} (chain rewritten)")
            expected_seq, prev_hash, prev_time = seq + 1, stored_hash, occurred_at
            count += 1
    except ChainBroken as error:
        error.progress = (count, expected_seq - 1, prev_hash)  # what was verified before the break
        raise
    return count, expected_seq - 1, prev_hash


def verify(*, from_seq: int = 1, checkpoint_dir: Path | str | None = None, progress: bool = False) -> Verification:
    """Verify the chain from ``from_seq`` and return the outcome; never raises for tampering.

    Fails on: a checkpoint not signed by a trusted key; a sequence gap; a broken prev_hash
    link; a recomputed hash that differs; a timestamp going backwards; a hash differing
    from a signed checkpoint or the chain head; a chain shorter than a checkpoint or the
    head (truncated tail).
    """
    from_seq = max(1, from_seq)
    directory = Path(checkpoint_dir or settings.AUDIT_CHECKPOINT_DIR)
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    count, last_seq, last_hash, sealed = 0, from_seq - 1, GENESIS_HASH, []
    try:
        sealed = [c for c in checkpoint_store.load_verified(directory) if c.seq >= from_seq]
        anchors = {c.seq: (c.head, f"signed checkpoint {Path(c.path).name}") for c in sealed}
        if head and head[0] >= from_seq and head[0] not in anchors:
            anchors[head[0]] = (head[1], "chain head row")
        prev_hash, prev_time = _starting_point(from_seq)
        last_hash = prev_hash
        total = max(0, (head[0] if head else 0) - from_seq + 1)
        rows = _rows(from_seq)
        if progress:
            rows = tqdm(rows, total=total, unit="ev", mininterval=1)
        count, last_seq, last_hash = _check_rows(rows, from_seq, prev_hash, prev_time, anchors)
        _check_length(last_seq, sealed, head)
    except (ChainBroken, checkpoint_store.CheckpointError) as error:
        count, last_seq, last_hash = getattr(error, "progress", (count, last_seq, last_hash))
        return Verification(False, count, last_seq, last_hash, error.seq, error.reason, len(sealed))
    return Verification(True, count, last_seq, last_hash, checkpoints=len(sealed))


def _check_length(last_seq: int, sealed: list, head: tuple | None) -> None:
    longest = max((c.seq for c in sealed), default=0)
    if longest > last_seq:
        raise ChainBroken(
            last_seq + 1, f"chain ends at {last_seq} but a signed checkpoint covers {longest} (truncated)"
        )
    if head is not None and head[0] > last_seq:
        raise ChainBroken(last_seq + 1, f"chain ends at {last_seq} but the chain head says {head[0]} (truncated)")
    if head is None and last_seq > 0:
        raise ChainBroken(last_seq + 1, "the chain head row is missing")
