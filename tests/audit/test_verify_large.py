"""Verification of 100,000 events completes and is correct (rate measured by the benchmark)."""

from __future__ import annotations

import pytest

from audit.verification import verify

from .conftest import build_chain, insert_raw, owner_sql, set_head

COUNT = 100_000


@pytest.mark.slow
@pytest.mark.django_db
def test_verify_100k_events():
    chain = build_chain(COUNT)
    insert_raw(chain)
    set_head(COUNT, chain[-1][-1])
    result = verify()
    assert result.ok, result.summary()
    assert (result.count, result.head_seq, result.head_hash) == (COUNT, COUNT, chain[-1][-1])
    owner_sql("UPDATE audit_auditevent SET target_id = 'edited' WHERE seq = 99999")
    broken = verify(from_seq=90_000)
    assert (broken.ok, broken.bad_seq) == (False, 99_999)
