"""Benchmark data. Benchmarks may write rows directly; tests do only for scale.

The rows come from the row factories shared with the tests (``custos_testing.factories``,
``custos_testing.bulk``): no action runs and no ledger event is written for them. Two builders
are the benchmarks' own: user-data logins (the user-data store) and ledger events appended with
COPY (``chain_events``).
"""

from __future__ import annotations

import itertools
from datetime import timedelta

from django.utils import timezone

from accounts.models import User
from custos_testing import bulk
from custos_testing.factories import GrantRowFactory, RequestRowFactory, UserRowFactory
from investigations.models import Case, Grant, RequestStatus

BATCH = 5000


def user(username: str) -> User:
    """A bare user (no role), made once."""
    return UserRowFactory(username=username)


def cases(count: int, lead: User, prefix: str) -> list[Case]:
    return bulk.cases(count, lead=lead, prefix=prefix, batch_size=BATCH)


def view_perms(user: User, case_list: list[Case]) -> None:
    bulk.view_perms(user, case_list, batch_size=BATCH)


# --- grants with user data behind them --------------------------------------------------

_grant_cases = itertools.count(1)


def grant_for(
    grantee: User, subjects: list[int], *, categories: tuple[str, ...] = ("ip_logs",), days: int = 30
) -> Grant:
    """An active grant on a new open case, ``grantee`` on it, window = the last ``days`` days."""
    today = timezone.now().date()
    [parent] = cases(1, grantee, f"G{next(_grant_cases)}")
    data_request = RequestRowFactory(
        case=parent,
        requested_by=grantee,
        subjects=subjects,
        categories=list(categories),
        window_start=today - timedelta(days=days),
        window_end=today,
        duration_hours=24,
    )
    now = timezone.now()
    grant = GrantRowFactory(
        request=data_request, starts_at=now - timedelta(hours=1), expires_at=now + timedelta(hours=23)
    )
    grant.grantees.add(grantee)
    return grant


def login_events(account_id: int, count: int) -> None:
    """``count`` logins of one account, spread over the last 20 days (inside ``grant_for``'s window)."""
    from userdata.models import Account, LoginEvent

    now = timezone.now()
    Account.objects.using("userdata").create(
        id=account_id,
        handle=f"bench{account_id}",
        display_name="Bench",
        email=f"bench{account_id}@example.org",
        phone=f"+1{account_id:010d}",
        country="NL",
        created_at=now - timedelta(days=400),
    )
    LoginEvent.objects.using("userdata").bulk_create(
        [
            LoginEvent(
                account_id=account_id,
                ip=f"10.{index // 65536 % 256}.{index // 256 % 256}.{index % 256}",
                user_agent="Mozilla/5.0 (bench)",
                occurred_at=now - timedelta(days=20) + timedelta(seconds=index * 60),
            )
            for index in range(count)
        ],
        batch_size=5000,
    )


def submitted_requests(count: int, case: Case, requester: User) -> None:
    now = timezone.now()
    bulk.insert(
        (
            RequestRowFactory.build(
                case=case,
                requested_by=requester,
                status=RequestStatus.SUBMITTED,
                review_round=1,
                submitted_at=now - timedelta(seconds=index),
            )
            for index in range(count)
        ),
        batch_size=BATCH,
    )


def alerts(count: int, case: Case, user: User) -> None:
    """``count`` open oversight alerts on ``case`` (warning), newest event last."""
    from investigations.models import Alert

    now = timezone.now()
    first = (Alert.objects.order_by("-event_seq").values_list("event_seq", flat=True).first() or 0) + 1
    Alert.objects.bulk_create(
        [
            Alert(
                kind="off_hours_query",
                severity="warning",
                event_seq=first + index,
                event_at=now - timedelta(seconds=count - index),
                case=case,
                user=user,
                summary=f"Alert {index}",
            )
            for index in range(count)
        ],
        batch_size=5000,
    )


# --- ledger events ------------------------------------------------------------------------


def chain_events(count: int, *, case_reference: str) -> None:
    """Append ``count`` valid events after the current head with COPY, then move the head.

    The hashes come from the ledger's own ``hash_values``, so ``verify_audit`` accepts the
    result; only the table owner can write this way (the runtime role may not COPY or update
    the head by hand). PostgreSQL only.
    """
    import json

    from django.db import connection

    from audit import sealer
    from audit.events import Action
    from audit.ledger import GENESIS_HASH, HASHED_FIELDS, hash_values
    from audit.models import ChainHead

    sealer.seal()  # the events appended so far are chained first: the head is then the newest event
    head = ChainHead.objects.filter(pk=1).first()
    seq, prev_hash = (head.seq, head.hash) if head else (0, GENESIS_HASH)
    moment = max(timezone.now(), head.occurred_at or timezone.now()) if head else timezone.now()
    rows = []
    for offset in range(1, count + 1):
        values = (
            seq + offset,
            moment + timedelta(microseconds=offset),
            None,
            "",
            "",
            Action.QUERY_COMPLETED.value,
            "investigations.dataquery",
            str(offset),
            case_reference,
            {"rows": offset % 97, "truncated": False, "digest": f"{offset:064x}", "attempt": 1},
            "10.0.0.1",
            "Mozilla/5.0 (bench)",
            f"req-{offset}",
            prev_hash,
        )
        prev_hash = hash_values(values)
        rows.append((*values, prev_hash))
    details = HASHED_FIELDS.index("details")
    columns = ", ".join((*HASHED_FIELDS, "hash"))
    with connection.cursor() as cursor, cursor.copy(f"COPY audit_auditevent ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(value) if index == details else value for index, value in enumerate(row)])
    last = rows[-1]
    ChainHead.objects.update_or_create(
        pk=1, defaults={"seq": last[0], "hash": last[-1], "prev_hash": last[-2], "occurred_at": last[1]}
    )
    with connection.cursor() as cursor:  # writers draw their numbers after these
        cursor.execute("SELECT setval('audit_auditevent_seq', %s)", [last[0]])
