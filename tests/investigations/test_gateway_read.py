"""The gateway's read: what ``read_rows`` returns is what the catalogue's ORM read returns.

On PostgreSQL ``read_rows`` runs ``read_statement`` (one SQL text per category, times and dates
made text by the database); ``read_query`` is the ORM's writing of the same read, which SQLite
runs. Both must give the same rows, cells, order, cap and owners for every category.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from django.db import connections

from investigations import gateway
from investigations.models import Grant
from userdata.catalogue import CATEGORIES
from userdata.models import Account, Connection, Device, LocationEvent, LoginEvent
from userdata.seed import seeding

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

postgresql_only = pytest.mark.skipif(
    connections["userdata"].vendor != "postgresql", reason="read_statement: the PostgreSQL read"
)


@pytest.fixture
def edge_rows(store):
    """Rows whose cells are easy to get wrong: whole seconds, one microsecond, another time zone,
    both ends of the window, negative decimals."""
    day = datetime(store.year, store.month, store.day, tzinfo=UTC) - timedelta(days=10)
    times = [
        day,  # the window's first instant (kept)
        day + timedelta(microseconds=1),
        day.replace(hour=23, minute=59, second=59, microsecond=999_999),
        (day + timedelta(hours=5)).astimezone(timezone(timedelta(hours=5, minutes=30))),
        day + timedelta(days=11),  # the day after the window's last (left out)
    ]
    with seeding():
        Account.objects.using("userdata").filter(pk=7).update(created_at=day)
        for number, moment in enumerate(times):
            Connection.objects.using("userdata").create(
                account_id=7, contact_id=11 + number, kind="edge", created_at=moment, last_interaction_at=moment
            )
            LoginEvent.objects.using("userdata").create(
                account_id=7, ip="2001:db8::7", user_agent="é", occurred_at=moment
            )
            LocationEvent.objects.using("userdata").create(
                account_id=7,
                city="Ushuaia",
                country="AR",
                latitude=Decimal("-54.80"),
                longitude=Decimal("-68.30"),
                occurred_at=moment,
            )
            Device.objects.using("userdata").create(
                account_id=7,
                device_id=f"edge-{moment.timestamp()}",
                model="m",
                os="o",
                first_seen=moment,
                last_seen=moment,
            )
    return day.date(), store


def _grant(subjects, start, end) -> Grant:
    return Grant(subjects=list(subjects), categories=list(CATEGORIES), window_start=start, window_end=end)


def _orm_extract(grant: Grant, parameters: gateway.QueryParameters) -> list[tuple]:
    query, _ = gateway.read_query(grant=grant, parameters=parameters)
    with gateway.audited_access():
        return [(row[0], *(gateway._cell(value) for value in row[1:])) for row in query]


@postgresql_only
@pytest.mark.parametrize("category", list(CATEGORIES))
@pytest.mark.parametrize("cap", [10_000, 2])
def test_the_statement_reads_what_the_orm_reads(edge_rows, category, cap, settings):
    settings.CUSTOS = {**settings.CUSTOS, "QUERY_ROW_CAP": cap}
    start, today = edge_rows
    grant = _grant([7, 3, 5], start, today)
    parameters = gateway.QueryParameters(category, (7, 3, 5), start, start + timedelta(days=10))
    assert gateway.read_statement(grant=grant, parameters=parameters) is not None  # the path under test
    expected = _orm_extract(grant, parameters)
    extract = gateway.read_rows(grant=grant, parameters=parameters)
    assert len(expected) > (cap if cap == 2 else 0), category
    assert [list(row[1:]) for row in expected[:cap]] == extract.rows
    assert tuple(row[0] for row in expected[:cap]) == extract.owners
    assert extract.truncated == (len(expected) > cap)
    assert 7 in extract.owners or cap == 2


@postgresql_only
def test_times_are_utc_iso_text_as_the_digest_documents(edge_rows):
    start, today = edge_rows
    grant = _grant([7], start, today)
    parameters = gateway.QueryParameters("ip_logs", (7,), start, start)
    extract = gateway.read_rows(grant=grant, parameters=parameters)
    assert [row[3] for row in extract.rows] == [
        f"{start}T00:00:00.000000+00:00",
        f"{start}T00:00:00.000001+00:00",
        f"{start}T05:00:00.000000+00:00",
        f"{start}T23:59:59.999999+00:00",
    ]
    assert {row[1] for row in extract.rows} == {"2001:db8::7"} and {row[2] for row in extract.rows} == {"é"}
