"""Realistic volumes for measuring Custos at scale (``manage.py seed_scale``), in minutes.

Set-based, PostgreSQL only: each chunk of rows is one ``INSERT ... SELECT FROM generate_series``
(cases with their lead's membership, involvement period and object permissions in the same
statement), committed chunk by chunk. The rows are what the actions leave behind for a case
opened by an investigator (``case_open``), without the ledger events each would write; the
ledger gets its own volume of events through ``audit.record_many`` (the ledger's public API),
so the chain stays valid and ``verify_audit`` accepts it.

Nothing here runs in production code paths: this is a tool for a throwaway or measurement
database, like ``seed_demo`` and ``seed_userdata``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, connections, transaction

CASE_CHUNK = 50_000
MAX_CASE_NUMBER = 9_999_999
EVENT_CHUNK = 5_000
ACCOUNT_CHUNK = 100_000
LOGIN_CHUNK = 1_000_000
LEAD_PREFIX = "scale-lead-"
Progress = Callable[[str], None]


class NotPostgres(Exception):
    """The database of an alias is not PostgreSQL (set-based seeding uses its SQL)."""


def require_postgres(*aliases: str) -> None:
    for alias in aliases:
        if connections[alias].vendor != "postgresql":
            raise NotPostgres(
                f"seed_scale writes volumes with PostgreSQL's set-based SQL (generate_series), and the "
                f"{alias!r} database is {connections[alias].vendor}. Point DATABASE_URL and USERDATA_DATABASE_URL "
                "at PostgreSQL (postgres://...) to seed at scale; the embedded SQLite default is for one person "
                "trying Custos, not for millions of rows (use `manage.py seed_demo` there)."
            )


@dataclass
class Counts:
    cases: int = 0
    events: int = 0
    accounts: int = 0
    login_events: int = 0
    seconds: float = 0.0


def leads(count: int) -> list:
    """``count`` investigators to lead the seeded cases (made by ``user_create`` once, then reused)."""
    from accounts.actions import user_create
    from accounts.models import User

    people = []
    for index in range(1, count + 1):
        username = f"{LEAD_PREFIX}{index:03d}"
        person = User.objects.filter(username=username).first()
        if person is None:
            person = user_create(
                actor=None,
                username=username,
                password=None,
                first_name="Scale",
                last_name=f"Lead {index}",
                email=f"{username}@example.org",
                roles=["investigator"],
            )
        people.append(person)
    return people


def _reserve_numbers(count: int) -> tuple[int, int]:
    """Take ``count`` case numbers of this year from the reference counter under its row lock
    (as ``case_open`` does one at a time), in the caller's transaction: the year and the first."""
    from django.utils import timezone

    from investigations.models import CaseReferenceCounter

    year = timezone.now().year
    CaseReferenceCounter.objects.get_or_create(year=year)
    counter = CaseReferenceCounter.objects.select_for_update().get(year=year)
    first = counter.last_number + 1
    counter.last_number += count
    counter.save(update_fields=["last_number"])
    return year, first


_CASES_SQL = """
WITH new AS (
    INSERT INTO investigations_case (
        reference, title, allegation, case_type, purpose, status, created_at, updated_at, decided_at,
        rejection_reason, closed_at, closure_summary, decided_by_id, lead_id, priority, legal_hold,
        legal_hold_reason{extra_columns}
    )
    SELECT
        %(prefix)s || CASE WHEN n < 10000 THEN lpad(n::text, 4, '0') ELSE n::text END,
        'Scale case ' || n,
        'Seeded at scale: expense claims that badge records contradict.',
        (%(types)s::text[])[1 + n %% cardinality(%(types)s::text[])],
        'Measure Custos at realistic volumes.',
        CASE WHEN n %% 20 = 0 THEN 'pending_approval' WHEN n %% 20 IN (1, 2) THEN 'closed' ELSE 'open' END,
        opened, opened,
        CASE WHEN n %% 20 = 0 THEN NULL ELSE opened + interval '1 day' END,
        '',
        CASE WHEN n %% 20 IN (1, 2) THEN opened + interval '30 days' END,
        CASE WHEN n %% 20 IN (1, 2) THEN 'Closed at scale.' ELSE '' END,
        NULL,
        (%(leads)s::bigint[])[1 + n %% cardinality(%(leads)s::bigint[])],
        (%(priorities)s::text[])[1 + (n / 7) %% cardinality(%(priorities)s::text[])],
        false,
        ''{extra_values}
    FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n,
         LATERAL (SELECT now() - (%(days)s * interval '1 day')
                         * ((%(count_all)s - 1 - (n + %(position)s))::float / %(count_all)s) AS opened) AS moment
    RETURNING id, lead_id, status, created_at
), members AS (
    INSERT INTO investigations_casemember (is_lead, added_at, added_by_id, case_id, user_id)
    SELECT true, created_at, lead_id, id, lead_id FROM new
), periods AS (
    INSERT INTO investigations_casemembership (involvement, joined_at, case_id, user_id)
    SELECT 'team', created_at, id, lead_id FROM new
)
INSERT INTO investigations_caseuserobjectpermission (content_object_id, permission_id, user_id)
SELECT new.id, perm.id, new.lead_id
FROM new CROSS JOIN unnest(%(perms)s::int[]) AS perm(id)
WHERE new.status <> 'closed' OR perm.id = %(view)s
"""


_CASES_COLUMNS = {
    "id", "reference", "title", "allegation", "case_type", "purpose", "status", "created_at", "updated_at",
    "decided_at", "rejection_reason", "closed_at", "closure_summary", "decided_by_id", "lead_id", "priority",
    "legal_hold", "legal_hold_reason",
}  # fmt: skip


def _cases_sql() -> tuple[str, dict[str, Any]]:
    """``_CASES_SQL`` with every other column of the case table given its model default (columns
    added later need no change here) and those defaults as parameters."""
    from investigations.models import Case

    extra = [field for field in Case._meta.concrete_fields if field.column not in _CASES_COLUMNS]
    params = {f"extra_{index}": field.get_db_prep_save(field.get_default(), connection) for index, field in
              enumerate(extra)}  # fmt: skip
    sql = _CASES_SQL.replace(
        "{extra_columns}", "".join(f", {connection.ops.quote_name(field.column)}" for field in extra)
    ).replace("{extra_values}", "".join(f", %(extra_{index})s" for index in range(len(extra))))
    return sql, params


def seed_cases(count: int, *, lead_count: int = 20, days: int = 365, progress: Progress = print) -> int:
    """``count`` cases (1 in 20 pending approval, 2 in 20 closed, the rest open) over the last
    ``days`` days, led by ``lead_count`` investigators, each lead a member with the lead's
    object permissions (``view_case`` only on closed cases), as ``case_open`` leaves them."""
    from django.contrib.auth.models import Permission

    from investigations.access import CASE_PERMS, LEAD_PERMS
    from investigations.models import CasePriority, CaseType

    if count <= 0:
        return 0
    lead_ids = [person.pk for person in leads(lead_count)]
    permissions = dict(
        Permission.objects.filter(content_type__app_label="investigations", codename__in=CASE_PERMS).values_list(
            "codename", "id"
        )
    )
    sql, extra = _cases_sql()
    done = 0
    while done < count:
        size = min(CASE_CHUNK, count - done)
        # Each chunk takes its numbers from the counter in its own transaction: a failed chunk
        # takes none, and cases opened meanwhile by people get numbers after the chunk's.
        with transaction.atomic(), connection.cursor() as cursor:
            year, first = _reserve_numbers(size)
            if first + size - 1 > MAX_CASE_NUMBER:
                raise ValueError(f"case numbers of {year} would pass {MAX_CASE_NUMBER:,} (16-character references)")
            cursor.execute(
                sql,
                extra
                | {
                    "prefix": f"INV-{year}-",
                    "types": [value for value, _ in CaseType.choices],
                    "priorities": [value for value, _ in CasePriority.choices],
                    "leads": lead_ids,
                    "first": first,
                    "last": first + size - 1,
                    "position": done - first,
                    "count_all": count,
                    "days": days,
                    "perms": [permissions[name] for name in LEAD_PERMS],
                    "view": permissions["view_case"],
                },
            )
        done += size
        progress(f"cases: {done:,} of {count:,}")
    return count


_EVENT_ACTIONS = ("case.note_added", "case.viewed", "query.completed", "request.submitted", "grant.expired")


def seed_events(count: int, *, progress: Progress = print, seed: int = 2026) -> int:
    """``count`` ledger events through ``audit.record_many`` (chunks of ``EVENT_CHUNK``, each
    its own transaction), about the seeded cases and by their leads when there are some."""
    import audit
    from audit.events import Action
    from investigations.models import Case

    if count <= 0:
        return 0
    known = {action.value for action in Action}
    actions = [Action(value) for value in _EVENT_ACTIONS if value in known] or [Action.CASE_NOTE_ADDED]
    rng = random.Random(seed)  # noqa: S311  (which seeded case an event is about)
    from accounts.models import User

    cases = list(Case.objects.order_by("-pk").values_list("pk", "reference", "lead_id")[:10_000])
    actors = User.objects.in_bulk({lead_id for _, _, lead_id in cases})
    written = 0
    while written < count:
        size = min(EVENT_CHUNK, count - written)
        events = []
        for index in range(size):
            number = written + index
            action = actions[number % len(actions)]
            if cases:
                case_id, reference, lead_id = cases[rng.randrange(len(cases))]
                events.append(
                    {
                        "action": action,
                        "actor": actors[lead_id],
                        "target": ("investigations.case", case_id),
                        "case_reference": reference,
                        "details": {"seeded": True, "n": number, "rows": number % 97},
                    }
                )
            else:
                events.append({"action": action, "details": {"seeded": True, "n": number}})
        with transaction.atomic():
            audit.record_many(events, returning=False)
        written += size
        if written % (EVENT_CHUNK * 20) == 0 or written == count:
            progress(f"events: {written:,} of {count:,}")
    return count


_ACCOUNTS_SQL = """
INSERT INTO userdata_account (id, handle, display_name, email, phone, country, created_at, is_employee)
SELECT n, 'scale' || n, 'Scale Account ' || n, 'scale' || n || '@example.org',
       '+31' || lpad(n::text, 10, '0'),
       (ARRAY['DE','FR','ES','IT','PL','NL','IE','PT','AT','SE','GR','CZ'])[1 + n %% 12],
       now() - interval '400 days' - (n %% 2000) * interval '1 day',
       n %% 5 = 0
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS n
"""

# Logins spread at random over the accounts and over ``days`` days: rows of one account lie
# anywhere in the table (as they arrive in production), the hardest layout for a per-subject read.
_LOGINS_SQL = """
WITH accounts AS (SELECT array_agg(id ORDER BY id) AS ids FROM userdata_account)
INSERT INTO userdata_loginevent (account_id, ip, user_agent, occurred_at)
SELECT accounts.ids[1 + floor(random() * cardinality(accounts.ids))::int],
       '11.0.0.0'::inet + floor(random() * 3000000000)::bigint,
       (ARRAY['Mozilla/5.0 (X11; Linux x86_64)', 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_0)',
              'Mozilla/5.0 (Windows NT 10.0; Win64; x64)', 'CustosApp/3.2 (Android 15)'])[1 + n %% 4],
       now() - random() * %(days)s * interval '1 day'
FROM generate_series(1, %(count)s::bigint) AS n, accounts
"""


def seed_accounts(count: int, *, progress: Progress = print) -> int:
    """``count`` accounts of the user-data store, ids after the highest there."""
    from userdata.seed import seeding

    if count <= 0:
        return 0
    ud = connections["userdata"]
    with seeding(), ud.cursor() as cursor:
        cursor.execute("SELECT COALESCE(max(id), 0) FROM userdata_account")
        base = cursor.fetchone()[0]
        for start in range(base + 1, base + count + 1, ACCOUNT_CHUNK):
            last = min(start + ACCOUNT_CHUNK - 1, base + count)
            with transaction.atomic(using="userdata"):
                cursor.execute(_ACCOUNTS_SQL, {"first": start, "last": last})
            progress(f"accounts: {last - base:,} of {count:,}")
    return count


def seed_login_events(count: int, *, days: int = 365, progress: Progress = print, seed: float = 0.2026) -> int:
    """``count`` logins spread at random over the store's accounts and the last ``days`` days,
    in chunks of ``LOGIN_CHUNK`` (each its own transaction); then ANALYZE."""
    from userdata.seed import seeding

    if count <= 0:
        return 0
    ud = connections["userdata"]
    with seeding(), ud.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM userdata_account")
        if not cursor.fetchone()[0]:
            raise ValueError("the user-data store has no accounts: seed some first (--accounts)")
        cursor.execute("SELECT setseed(%s)", [seed])
        written = 0
        while written < count:
            size = min(LOGIN_CHUNK, count - written)
            with transaction.atomic(using="userdata"):
                cursor.execute(_LOGINS_SQL, {"days": days, "count": size})
            written += size
            progress(f"login events: {written:,} of {count:,}")
        cursor.execute("ANALYZE userdata_loginevent")
    return count


def seed_scale(
    *,
    cases: int = 0,
    events: int = 0,
    accounts: int = 0,
    login_events: int = 0,
    leads: int = 20,
    days: int = 365,
    progress: Progress = print,
) -> Counts:
    require_postgres("default", "userdata")
    started = time.perf_counter()
    counts = Counts()
    counts.cases = seed_cases(cases, lead_count=leads, days=days, progress=progress)
    counts.events = seed_events(events, progress=progress)
    counts.accounts = seed_accounts(accounts, progress=progress)
    counts.login_events = seed_login_events(login_events, days=days, progress=progress)
    if cases:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    counts.seconds = round(time.perf_counter() - started, 1)
    return counts
