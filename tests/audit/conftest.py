"""Fixtures for the ledger tests: a private key and checkpoint folder per test, tamper helpers."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

import audit
from audit import sealer, triggers
from audit.events import Action
from audit.ledger import GENESIS_HASH, HASHED_FIELDS, hash_values
from audit.models import AuditEvent, ChainHead


@pytest.fixture(autouse=True)
def ledger_settings(settings, tmp_path):
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = tmp_path / "keys" / "signing.pem"
    settings.AUDIT_SIGNING_KEY_AUTOGENERATE = True
    settings.AUDIT_VERIFY_KEYS = []
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings


@pytest.fixture
def events(db) -> list[AuditEvent]:
    """Ten events on a fresh chain, sealed (read back with their hashes)."""
    recorded = [
        audit.record(action=Action.CASE_NOTE_ADDED, case_reference="INV-2026-0001", details={"n": n}) for n in range(10)
    ]
    sealer.seal()
    return list(AuditEvent.objects.filter(seq__in=[event.seq for event in recorded]).order_by("seq"))


@contextmanager
def triggers_off():
    """As the table owner: switch the append-only triggers off (what a DBA could do)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {triggers.TABLE} DISABLE TRIGGER USER")
        yield
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {triggers.TABLE} ENABLE TRIGGER USER")
    else:
        triggers.uninstall(connection)
        yield
        triggers.install(connection)


def owner_sql(sql: str, params: list | None = None) -> None:
    with triggers_off(), connection.cursor() as cursor:
        cursor.execute(sql, params)


def rows(from_seq: int = 1) -> list[tuple]:
    """The chain from ``from_seq``, sealed first (what has committed gets its hashes, unless
    tampering stopped the sealer)."""
    sealer.seal_first()
    return list(AuditEvent.objects.filter(seq__gte=from_seq).order_by("seq").values_list(*HASHED_FIELDS, "hash"))


INSERT_COLUMNS = (*HASHED_FIELDS, "hash")


def insert_raw(values: list[tuple]) -> None:
    """INSERT rows as the owner would, bypassing the model (which refuses)."""
    columns = ", ".join(INSERT_COLUMNS)
    placeholders = "(" + ", ".join(["%s"] * len(INSERT_COLUMNS)) + ")"
    with connection.cursor() as cursor:
        for start in range(0, len(values), 1000):
            chunk = values[start : start + 1000]
            params = [value for row in chunk for value in _db_row(row)]
            cursor.execute(
                f"INSERT INTO audit_auditevent ({columns}) VALUES {', '.join([placeholders] * len(chunk))}",  # noqa: S608 (constants)
                params,
            )
        if connection.vendor == "postgresql" and values:  # writers draw their numbers after these
            cursor.execute("SELECT setval('audit_auditevent_seq', (SELECT max(seq) FROM audit_auditevent))")


def _db_row(row: tuple) -> tuple:
    import json

    field = AuditEvent._meta.get_field("occurred_at")
    values = list(row)
    values[1] = field.get_db_prep_value(values[1], connection)
    values[HASHED_FIELDS.index("details")] = json.dumps(values[HASHED_FIELDS.index("details")])
    return tuple(values)


def build_chain(
    count: int,
    *,
    start_seq: int = 1,
    prev_hash: str = GENESIS_HASH,
    start: datetime | None = None,
    times: list[datetime] | None = None,
):
    """Rows of a valid chain, hashed with the ledger's own function (for fast bulk setup); each
    event ``seq`` milliseconds after ``start``, or at ``times[i]`` when given."""
    moment = start or datetime(2026, 1, 1, tzinfo=UTC)
    result = []
    for offset in range(count):
        seq = start_seq + offset
        values = (
            seq,
            times[offset] if times else moment + timedelta(milliseconds=seq),
            None,
            "",
            "",
            Action.QUERY_COMPLETED.value,
            "investigations.query",
            str(seq),
            "INV-2026-0001",
            {"rows": seq % 97, "digest": f"{seq:064x}"},
            "10.0.0.1",
            "bench",
            "",
            prev_hash,
        )
        prev_hash = hash_values(values)
        result.append((*values, prev_hash))
    return result


def set_head(seq: int, head_hash: str) -> None:
    ChainHead.objects.update_or_create(pk=1, defaults={"seq": seq, "hash": head_hash})


def leave_out(*seqs: int) -> str:
    """As the owner: unseal events ``seqs`` and re-chain every later event over them (the head
    too): every link and hash checks out, but events below the head have no seal. Returns the
    new head hash."""
    chain = rows()
    skipped = set(seqs)
    prev_hash = next(row[-1] for row in reversed(chain) if row[0] < min(skipped))
    with triggers_off(), connection.cursor() as cursor:
        for row in chain:
            if row[0] < min(skipped):
                continue
            if row[0] in skipped:
                cursor.execute("UPDATE audit_auditevent SET prev_hash = NULL, hash = NULL WHERE seq = %s", [row[0]])
                continue
            values = (*row[:-2], prev_hash)
            prev_hash = hash_values(values)
            cursor.execute(
                "UPDATE audit_auditevent SET prev_hash = %s, hash = %s WHERE seq = %s", [values[-1], prev_hash, row[0]]
            )
    set_head(chain[-1][0], prev_hash)
    return prev_hash
