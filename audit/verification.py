"""Verify the ledger: recompute every hash, check continuity, agree with signed checkpoints.

Fast by construction: one streamed query of plain tuples (``values_list(...).iterator()``),
no model instances, a single pass.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from tqdm import tqdm

from . import checkpoints as checkpoint_store
from .ledger import GENESIS_HASH, HASHED_FIELDS, hash_values
from .models import AuditEvent, ChainHead

CHUNK_SIZE = 5000


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


def _rows(from_seq: int) -> Iterable[tuple]:
    columns = (*HASHED_FIELDS, "hash")
    queryset = AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq").values_list(*columns)
    return queryset.iterator(chunk_size=CHUNK_SIZE)


def _starting_point(from_seq: int) -> tuple[str, datetime | None]:
    if from_seq <= 1:
        return GENESIS_HASH, None
    before = AuditEvent.objects.filter(seq=from_seq - 1).values_list("hash", "occurred_at").first()
    if before is None:
        raise ChainBroken(from_seq - 1, "the event before --from is missing")
    return before


def _check_row(
    row: tuple, expected_seq: int, prev_hash: str, prev_time: datetime | None, anchors: dict[int, tuple[str, str]]
) -> None:
    seq, occurred_at, stored_prev, stored_hash = row[0], row[1], row[-2], row[-1]
    if seq != expected_seq:
        raise ChainBroken(expected_seq, f"sequence gap: expected {expected_seq}, found {seq} (events missing)")
    if stored_prev != prev_hash:
        raise ChainBroken(seq, "prev_hash does not match the previous event's hash (deleted, inserted or reordered)")
    if hash_values(row[:-1]) != stored_hash:
        raise ChainBroken(seq, "hash mismatch: the event's content was changed")
    if prev_time is not None and occurred_at < prev_time:
        raise ChainBroken(seq, "timestamp earlier than the previous event's (back-dated)")
    anchor = anchors.get(seq)
    if anchor is not None and anchor[0] != stored_hash:
        raise ChainBroken(seq, f"hash differs from the {anchor[1]} (chain rewritten)")


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
        for row in tqdm(_rows(from_seq), total=total, disable=not progress, unit="ev", mininterval=1):
            _check_row(row, last_seq + 1, prev_hash, prev_time, anchors)
            last_seq, prev_hash, prev_time = row[0], row[-1], row[1]
            count += 1
        last_hash = prev_hash
        _check_length(last_seq, sealed, head)
    except (ChainBroken, checkpoint_store.CheckpointError) as error:
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
