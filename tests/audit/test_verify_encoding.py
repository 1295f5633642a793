"""The verifier's fast loop hashes exactly what the ledger hashes (audit.ledger's encoding)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from audit.ledger import GENESIS_HASH, HASHED_FIELDS, format_time, hash_values
from audit.verification import ChainBroken, _check_rows, _json_decoder, _payload_encoder

text = st.text(max_size=30)  # any code point: non-ASCII, control characters, DEL, surrogates excluded below
json_leaf = st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | text
details = st.dictionaries(text, st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(text, inner, max_size=3), max_leaves=8), max_size=5)


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(json_leaf, details), min_size=1, max_size=11))
def test_payload_encoder_matches_json_dumps(values):
    expected = json.dumps(values, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert _payload_encoder()(values) == expected


@hypothesis_settings(max_examples=200, deadline=None)
@given(details)
def test_json_decoder_matches_json_loads(value):
    encoded = json.dumps(value)
    assert _json_decoder()(encoded) == json.loads(encoded)
    spaced = " " + encoded + " "  # not what PostgreSQL sends, but never decoded differently
    assert _json_decoder()(spaced) == json.loads(spaced)


def _chain(payloads: list[tuple]) -> list[tuple]:
    rows, prev = [], GENESIS_HASH
    for seq, payload in enumerate(payloads, start=1):
        values = (seq, datetime(2026, 3, 1, 12, 0, seq, 250_000, tzinfo=UTC), *payload, prev)
        prev = hash_values(values)
        rows.append((seq, format_time(values[1]), *payload, values[-1], prev))
    return rows


PAYLOADS = [
    (7, "7", "lead", "query.completed", "investigations.dataquery", "12", "INV-2026-0001",
     {"rows": 3, "digest": "ab" * 32, "nested": {"z": [1, None, True], "a": "ü\u2028\x7f\x01"}},
     "10.0.0.1", "UA", "r1"),
    (None, "", "", "system.startup", "", "", "", {}, "", "", ""),
    (8, "8", "naïve-名前", "case.opened", "investigations.case", "3", "INV-2026-0002", {"k": 2**65}, "::1", "é", ""),
]


def test_fast_loop_accepts_a_chain_hashed_by_the_ledger():
    rows = _chain(PAYLOADS)
    assert len(rows[0]) == len(HASHED_FIELDS) + 1
    assert _check_rows(rows, 1, GENESIS_HASH, None, {}) == (3, 3, rows[-1][-1], rows[-1][1])
    as_text = [(*row[:9], json.dumps(row[9]), *row[10:]) for row in rows]  # details as PostgreSQL hands it over
    assert _check_rows(as_text, 1, GENESIS_HASH, None, {}) == (3, 3, rows[-1][-1], rows[-1][1])


@pytest.mark.parametrize("field", range(2, 13))
def test_fast_loop_detects_a_change_in_any_hashed_field(field):
    rows = [list(row) for row in _chain(PAYLOADS)]
    original = rows[1][field]
    rows[1][field] = {"changed": True} if isinstance(original, dict) else (1 if original is None else None)
    with pytest.raises(ChainBroken) as broken:
        _check_rows(rows, 1, GENESIS_HASH, None, {})
    assert broken.value.seq == 2 and "hash mismatch" in broken.value.reason
    assert broken.value.progress == (1, 1, rows[0][-1])


def test_fast_loop_detects_a_back_dated_event():
    rows = _chain(PAYLOADS)
    # Re-hash event 3 with a time before event 2's: the hash is right, the order of time is not.
    values = (3, datetime(2026, 3, 1, 12, 0, 1, tzinfo=UTC), *PAYLOADS[2], rows[1][-1])
    forged = (3, format_time(values[1]), *PAYLOADS[2], rows[1][-1], hash_values(values))
    with pytest.raises(ChainBroken) as broken:
        _check_rows([*rows[:2], forged], 1, GENESIS_HASH, None, {})
    assert broken.value.seq == 3 and "back-dated" in broken.value.reason
