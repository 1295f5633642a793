"""10,000 due grants expire in bounded batches with a fixed set of statements per batch."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audit import sealer
from audit.events import Action
from audit.models import AuditEvent
from audit.verification import verify
from custos_testing import bulk
from investigations.actions.lifecycle import grants_expire_due
from investigations.models import Grant, GrantStatus, GrantUserObjectPermission

pytestmark = [pytest.mark.slow, pytest.mark.django_db(databases=["default", "userdata"]), pytest.mark.timeout(300)]

BATCH = 1000
# Per batch: claim (SELECT ... FOR UPDATE SKIP LOCKED), mark (UPDATE), two permission DELETEs,
# read the events' data (SELECT): on PostgreSQL one statement doing all five (data-modifying
# CTEs), on SQLite five. Then audit.record_many: on PostgreSQL one INSERT (no lock; the sealer
# chains the events later); on SQLite the chain head locked and read (an UPDATE and a SELECT),
# one INSERT, the head moved (one UPDATE).
GRANT_STATEMENTS = {"postgresql": 1, "sqlite": 5}
LEDGER_STATEMENTS = {"postgresql": 1, "sqlite": 4}
LEDGER_INSERT = {
    "postgresql": 'WITH inserted AS (\nINSERT INTO "audit_auditevent"',
    "sqlite": 'INSERT INTO "audit_auditevent"',
}


def per_batch() -> int:
    return GRANT_STATEMENTS[connection.vendor] + LEDGER_STATEMENTS[connection.vendor]


def expire(batch_size: int) -> tuple[int, list[str]]:
    """Run the expiry; return how many grants it expired and the SQL it ran (savepoints apart)."""
    with CaptureQueriesContext(connection) as queries:
        expired = grants_expire_due(batch_size=batch_size)
    statements = [query["sql"] for query in queries]
    savepoints = sum(1 for sql in statements if sql.startswith("SAVEPOINT"))
    assert savepoints == -(-expired // batch_size) + 1  # a transaction per batch, one for the final empty claim
    return expired, [sql for sql in statements if not sql.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]


def statements_for(batches: int) -> int:
    return batches * per_batch() + 1  # + the final empty claim


def test_ten_thousand_due_grants_expire_in_batches_with_constant_statements_per_batch(open_case, lead):
    past = timezone.now() - timedelta(minutes=5)
    first = bulk.grants(2000, case=open_case, grantee=lead, expires_at=past)
    later = bulk.grants(3, case=open_case, grantee=lead, expires_at=timezone.now() + timedelta(hours=5))
    events_before = AuditEvent.objects.count()

    expired, small = expire(BATCH)
    assert expired == 2000
    assert len(small) == statements_for(2)

    second = bulk.grants(10_000, case=open_case, grantee=lead, expires_at=past)
    expired, large = expire(BATCH)
    assert expired == 10_000
    assert len(large) == statements_for(10)
    # The statements do not grow with N beyond one set per batch.
    assert len(large) - len(small) == 8 * per_batch()
    assert sum(1 for sql in large if sql.startswith(LEDGER_INSERT[connection.vendor])) == 10

    due_ids = {grant.pk for grant in first + second}
    assert set(Grant.objects.filter(status=GrantStatus.EXPIRED).values_list("pk", flat=True)) == due_ids
    assert not Grant.objects.filter(pk__in=due_ids, expired_at__isnull=True).exists()
    assert not GrantUserObjectPermission.objects.filter(content_object_id__in=due_ids).exists()
    # Grants not yet due keep their status and their grantee's permissions.
    assert set(Grant.objects.filter(status=GrantStatus.ACTIVE).values_list("pk", flat=True)) >= {g.pk for g in later}
    assert GrantUserObjectPermission.objects.filter(content_object__in=later).count() == 2 * len(later)

    per_grant = Counter(AuditEvent.objects.filter(action=Action.GRANT_EXPIRED).values_list("target_id", flat=True))
    assert set(per_grant) == {str(pk) for pk in due_ids}
    assert set(per_grant.values()) == {1}  # exactly one event per grant
    assert AuditEvent.objects.count() == events_before + 12_000

    again, statements = expire(BATCH)  # a second run (or a second beat) finds nothing
    assert again == 0 and len(statements) == 1
    assert AuditEvent.objects.count() == events_before + 12_000
    sealer.seal()
    result = verify()
    assert result.ok, result.summary()


def test_a_small_batch_size_bounds_each_transaction(open_case, lead):
    due = bulk.grants(25, case=open_case, grantee=lead, expires_at=timezone.now() - timedelta(seconds=1))
    expired, statements = expire(10)
    assert expired == 25
    assert len(statements) == statements_for(3)  # 10 + 10 + 5
    events = AuditEvent.objects.filter(action=Action.GRANT_EXPIRED, target_id__in=[str(g.pk) for g in due])
    assert events.count() == 25
