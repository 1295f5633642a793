"""Deterministic synthetic user data: the same seed and anchor give the same rows."""

from __future__ import annotations

import contextvars
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connections, transaction
from faker import Faker

from .models import Account, Connection, Device, LocationEvent, LoginEvent

CITIES = [
    ("Berlin", "DE", 52.52, 13.40),
    ("Paris", "FR", 48.86, 2.35),
    ("Madrid", "ES", 40.42, -3.70),
    ("Rome", "IT", 41.90, 12.50),
    ("Warsaw", "PL", 52.23, 21.01),
    ("Amsterdam", "NL", 52.37, 4.90),
    ("Dublin", "IE", 53.35, -6.26),
    ("Lisbon", "PT", 38.72, -9.14),
    ("Vienna", "AT", 48.21, 16.37),
    ("Stockholm", "SE", 59.33, 18.07),
    ("Athens", "GR", 37.98, 23.73),
    ("Prague", "CZ", 50.08, 14.44),
]
DEVICE_MODELS = [
    ("Pixel 8", "Android 15"),
    ("iPhone 15", "iOS 18"),
    ("Galaxy S24", "Android 14"),
    ("ThinkPad X1", "Windows 11"),
    ("MacBook Air", "macOS 15"),
    ("iPad Air", "iPadOS 18"),
]
USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64)",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5)",
    "CustosApp/3.2 (Android 15)",
]
CONNECTION_KINDS = ["follow", "contact", "message_thread"]
EMPLOYEE_EVERY = 5
BATCH = 5000
SPAN_DAYS = 365

Progress = Callable[[int], None]


def _at(rng: random.Random, anchor: datetime) -> datetime:
    return anchor - timedelta(seconds=rng.randrange(SPAN_DAYS * 86400))


def _accounts(rng: random.Random, fake: Faker, count: int, anchor: datetime) -> Iterator[Account]:
    for account_id in range(1, count + 1):
        handle = f"{fake.user_name()}{account_id}"[:64]
        yield Account(
            id=account_id,
            handle=handle,
            display_name=fake.name(),
            email=f"{handle}@{fake.free_email_domain()}",
            phone=f"+{rng.randrange(30, 50)}{rng.randrange(10**8, 10**9)}",
            country=rng.choice(CITIES)[1],
            created_at=anchor - timedelta(days=SPAN_DAYS + rng.randrange(2000)),
            # Every fifth account is an employee; derived from the id so the random stream (and
            # every other seeded row) stays what it was.
            is_employee=account_id % EMPLOYEE_EVERY == 0,
        )


def _ip(rng: random.Random) -> str:
    return f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def _events_for(rng: random.Random, account_id: int, count: int, anchor: datetime, shared_ips: list[str]):
    ips = [_ip(rng) for _ in range(rng.randrange(1, 4))]
    if rng.random() < 0.2:
        ips.append(rng.choice(shared_ips))  # cafés and offices: one IP, several accounts
    logins = [
        LoginEvent(
            account_id=account_id, ip=rng.choice(ips), user_agent=rng.choice(USER_AGENTS), occurred_at=_at(rng, anchor)
        )
        for _ in range(rng.randrange(4, 13))
    ]
    devices = []
    for index in range(rng.randrange(1, 4)):
        first, last = sorted([_at(rng, anchor), _at(rng, anchor)])
        model, os_name = rng.choice(DEVICE_MODELS)
        devices.append(
            Device(
                account_id=account_id,
                device_id=f"dev-{account_id}-{index}-{rng.randrange(10**6)}",
                model=model,
                os=os_name,
                first_seen=first,
                last_seen=last,
            )
        )
    home = rng.choice(CITIES)
    locations = []
    for _ in range(rng.randrange(3, 10)):
        city = home if rng.random() < 0.7 else rng.choice(CITIES)
        locations.append(
            LocationEvent(
                account_id=account_id,
                city=city[0],
                country=city[1],
                latitude=Decimal(f"{city[2] + rng.uniform(-0.05, 0.05):.2f}"),
                longitude=Decimal(f"{city[3] + rng.uniform(-0.05, 0.05):.2f}"),
                occurred_at=_at(rng, anchor),
            )
        )
    contacts = set()
    if count > 1:
        for _ in range(rng.randrange(1, 8)):
            contact = rng.randrange(1, count + 1)
            if contact != account_id:
                contacts.add((contact, rng.choice(CONNECTION_KINDS)))
    connections = []
    for contact, kind in sorted(contacts):
        created, last = sorted([_at(rng, anchor), _at(rng, anchor)])
        connections.append(
            Connection(
                account_id=account_id, contact_id=contact, kind=kind, created_at=created, last_interaction_at=last
            )
        )
    return logins, devices, locations, connections


_seeding: contextvars.ContextVar[bool] = contextvars.ContextVar("custos_userdata_seeding", default=False)


def is_seeding() -> bool:
    """True while the seeder writes the store (the test guard lets these writes through)."""
    return _seeding.get()


@contextmanager
def seeding() -> Iterator[None]:
    token = _seeding.set(True)
    try:
        yield
    finally:
        _seeding.reset(token)


def default_anchor() -> datetime:
    today = datetime.now(UTC).date()
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def seed_userdata(
    *,
    accounts: int,
    seed: int,
    anchor: datetime | None = None,
    using: str = "userdata",
    progress: Progress | None = None,
) -> dict[str, int]:
    """Replace the store's contents with ``accounts`` synthetic accounts and their events.

    Events fall in the year before ``anchor`` (default: today, midnight UTC).
    """
    with seeding():
        return _seed(accounts=accounts, seed=seed, anchor=anchor or default_anchor(), using=using, progress=progress)


def _seed(*, accounts: int, seed: int, anchor: datetime, using: str, progress: Progress | None) -> dict[str, int]:
    rng = random.Random(seed)
    fake = Faker()
    fake.seed_instance(seed)
    shared_ips = [_ip(rng) for _ in range(max(1, accounts // 50))]
    counts = dict.fromkeys(["accounts", "ip_logs", "devices", "location", "contacts"], 0)
    with transaction.atomic(using=using):
        _empty_store(using)
        batch: list[Account] = []
        for account in _accounts(rng, fake, accounts, anchor):
            batch.append(account)
            if len(batch) == BATCH:
                _flush(batch, rng, accounts, anchor, shared_ips, using, counts, progress)
                batch = []
        if batch:
            _flush(batch, rng, accounts, anchor, shared_ips, using, counts, progress)
    return counts


def _empty_store(using: str) -> None:
    # Plain DELETEs: the ORM's delete() would first read every row to collect cascades.
    with connections[using].cursor() as cursor:
        for model in (Connection, LocationEvent, Device, LoginEvent, Account):
            cursor.execute(f"DELETE FROM {connections[using].ops.quote_name(model._meta.db_table)}")  # noqa: S608


def _flush(batch, rng, total, anchor, shared_ips, using, counts, progress) -> None:
    Account.objects.using(using).bulk_create(batch)
    rows: dict[str, list] = {"ip_logs": [], "devices": [], "location": [], "contacts": []}
    for account in batch:
        for key, items in zip(rows, _events_for(rng, account.id, total, anchor, shared_ips), strict=True):
            rows[key].extend(items)
    for key, model in (
        ("ip_logs", LoginEvent),
        ("devices", Device),
        ("location", LocationEvent),
        ("contacts", Connection),
    ):
        model.objects.using(using).bulk_create(rows[key], batch_size=BATCH)
        counts[key] += len(rows[key])
    counts["accounts"] += len(batch)
    if progress:
        progress(len(batch))


def store_is_empty(using: str = "userdata") -> bool:
    """Whether the seeder has anything to do (it reads back its own store, never user data)."""
    with seeding():
        return not Account.objects.using(using).exists()


def describe_accounts(ids, using: str = "userdata") -> list[dict[str, str]]:
    """What the demo's README and start-up text say about a few accounts: handle, email, phone, an IP.

    Part of the seeder (it reads back what it wrote), never of the data path.
    """
    with seeding():
        return _describe(ids, using)


def _describe(ids, using: str) -> list[dict[str, str]]:
    accounts = Account.objects.using(using).filter(pk__in=ids).order_by("pk")
    first_ip: dict[int, str] = {}
    for account_id, ip in LoginEvent.objects.using(using).filter(account_id__in=ids).order_by("pk").values_list(
        "account_id", "ip"
    ):
        first_ip.setdefault(account_id, ip)
    return [
        {
            "id": str(account.pk),
            "handle": account.handle,
            "email": account.email,
            "phone": account.phone,
            "ip": first_ip.get(account.pk, ""),
        }
        for account in accounts
    ]
