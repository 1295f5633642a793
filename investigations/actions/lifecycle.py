"""Time-driven state changes of grants: expiry and expiry warnings.

These are hygiene, not security: the gateway refuses an expired grant by the database clock
whether or not expiry has run. They run from Celery beat, are safe to run twice or from two
beats at once (rows are claimed under lock, and a second run finds nothing to do), and work
in bounded batches so a large backlog never becomes one giant transaction.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Now
from django.urls import reverse

import audit
from audit.events import Action

from .. import notify
from ..models import Case, Grant, GrantGroupObjectPermission, GrantStatus, GrantUserObjectPermission, NotificationKind
from ..notify import site_url
from . import notification
from .locks import locked

WARNINGS = (("warned_24h_at", timedelta(hours=24), "24 hours"), ("warned_1h_at", timedelta(hours=1), "1 hour"))


def _claim(queryset, batch_size: int) -> list[int]:
    """Lock up to ``batch_size`` rows for this transaction; rows another worker holds are skipped."""
    return list(locked(queryset.order_by("pk"), skip_locked=True).values_list("pk", flat=True)[:batch_size])


def grants_expire_due(*, batch_size: int | None = None) -> int:
    """Mark every grant past ``expires_at`` (database clock) expired; remove its grantees' permissions.

    Per batch of up to ``batch_size`` grants, in one transaction, a fixed set of statements
    whatever the batch holds: the due grants are claimed (``FOR UPDATE SKIP LOCKED``, so a
    second beat or worker takes other rows or none) and marked, their grantees' object
    permissions removed and the events' data read, then ``audit.record_many`` writes one
    ``grant.expired`` event per grant with a fixed number of statements. A grant is claimed
    only while still active and due, so it is expired, and audited, exactly once. Returns
    how many grants this run expired.
    """
    batch_size = batch_size or settings.CUSTOS["EXPIRY_BATCH"]
    expire_batch = _expire_batch_postgres if connection.vendor == "postgresql" else _expire_batch
    total = 0
    while True:
        with transaction.atomic():
            expired = expire_batch(batch_size)
            if not expired:
                return total
            audit.record_many(
                (
                    {
                        "action": Action.GRANT_EXPIRED,
                        "target": ("investigations.grant", pk),
                        "case_reference": reference,
                        "details": {"expires_at": expires_at.isoformat()},
                    }
                    for pk, reference, expires_at in expired
                ),
                returning=False,
            )
            total += len(expired)


def _expire_batch(batch_size: int) -> list[tuple[int, str, datetime]]:
    """Claim, mark and strip up to ``batch_size`` due grants: five statements (claim, UPDATE, two DELETEs, SELECT).

    Returns ``(pk, case reference, expires_at)`` for each, in pk order.
    """
    ids = _claim(Grant.objects.due_for_expiry(), batch_size)
    if not ids:
        return []
    Grant.objects.filter(pk__in=ids, status=GrantStatus.ACTIVE).update(status=GrantStatus.EXPIRED, expired_at=Now())
    GrantUserObjectPermission.objects.filter(content_object_id__in=ids).delete()
    GrantGroupObjectPermission.objects.filter(content_object_id__in=ids).delete()
    return list(Grant.objects.filter(pk__in=ids).order_by("pk").values_list("pk", "case__reference", "expires_at"))


def _expire_batch_postgres(batch_size: int) -> list[tuple[int, str, datetime]]:
    """``_expire_batch`` as one statement: the same claim, UPDATE and DELETEs as data-modifying CTEs.

    The claim is the ORM's own query (``due_for_expiry``, locked with SKIP LOCKED), so "due"
    has one definition. One round trip instead of five, and the ids never travel to Python
    and back. The DELETEs and the UPDATE all act on the rows the claim locked.
    """
    claim = locked(Grant.objects.due_for_expiry().order_by("pk"), skip_locked=True).values_list("pk")
    claim_sql, claim_params = claim[:batch_size].query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH claimed (id) AS ({claim_sql}),{_EXPIRE_BATCH_SQL}",
            [*claim_params, GrantStatus.EXPIRED, GrantStatus.ACTIVE],
        )
        return cursor.fetchall()


# After "WITH claimed (id) AS (<the claim>),". Table names are the models' own; every value is a parameter.
_EXPIRE_BATCH_SQL = f"""
marked AS (
    UPDATE {Grant._meta.db_table} SET status = %s, expired_at = STATEMENT_TIMESTAMP()
     WHERE id IN (SELECT id FROM claimed) AND status = %s
 RETURNING id, case_id, expires_at
),
users AS (DELETE FROM {GrantUserObjectPermission._meta.db_table} WHERE content_object_id IN (SELECT id FROM claimed)),
groups AS (DELETE FROM {GrantGroupObjectPermission._meta.db_table} WHERE content_object_id IN (SELECT id FROM claimed))
SELECT marked.id, cases.reference, marked.expires_at
  FROM marked JOIN {Case._meta.db_table} AS cases ON cases.id = marked.case_id
 ORDER BY marked.id
"""  # noqa: S608


def grants_warn_expiring(*, batch_size: int | None = None) -> int:
    """Email grantees once per threshold (24 h and 1 h before expiry) for each active grant.

    The threshold's ``warned_*_at`` column is set in the transaction that claims the grant
    (``FOR UPDATE SKIP LOCKED``), and the e-mail is queued in that transaction
    (``notify.queue``), so two beats or an overlapping run never queue a warning twice, and a
    committed warning is sent even if the mail server is down at that moment.
    """
    batch_size = batch_size or settings.CUSTOS["EXPIRY_BATCH"]
    sent = 0
    for field, ahead, label in WARNINGS:
        while True:
            with transaction.atomic():
                due = Grant.objects.filter(
                    Q(**{f"{field}__isnull": True}),
                    status=GrantStatus.ACTIVE,
                    expires_at__gt=Now(),
                    expires_at__lte=Now() + ahead,
                )
                ids = _claim(due, batch_size)
                if not ids:
                    break
                Grant.objects.filter(pk__in=ids).update(**{field: Now()})
                grants = list(Grant.objects.filter(pk__in=ids).select_related("case").prefetch_related("grantees"))
                _notify_expiring(grants, label)
                _queue_warnings(grants, label)
                sent += len(ids)
    return sent


def _notify_expiring(grants: list[Grant], label: str) -> None:
    for grant in grants:
        notification.notify(
            actor=None,
            recipients=grant.grantees.all(),
            kind=NotificationKind.GRANT_EXPIRING,
            text=f"Grant {grant.pk} on {grant.case.reference} ends within {label}.",
            link=reverse("investigations:grant_detail", args=[grant.pk]),
        )


def _queue_warnings(grants: list[Grant], label: str) -> None:
    for grant in grants:
        recipients = [user.email for user in grant.grantees.all() if user.email and user.is_active]
        context = {
            "grant": grant,
            "label": label,
            "url": site_url(reverse("investigations:grant_detail", args=[grant.pk])),
        }
        notify.queue("grant_expiring", recipients, context)
