from datetime import UTC, datetime

import pytest
from django.db import connections

from config.routers import UserDataRouter
from userdata import catalogue
from userdata.models import Account, LoginEvent
from userdata.seed import seed_userdata

ANCHOR = datetime(2026, 6, 1, tzinfo=UTC)


def test_router_sends_userdata_to_its_alias_and_nothing_else():
    from accounts.models import User
    from audit.models import AuditEvent

    router = UserDataRouter()
    assert router.db_for_read(Account) == "userdata"
    assert router.db_for_write(LoginEvent) == "userdata"
    assert router.db_for_read(User) == "default"
    assert router.db_for_write(AuditEvent) == "default"
    assert router.allow_migrate("userdata", "userdata") is True
    assert router.allow_migrate("default", "userdata") is False
    assert router.allow_migrate("userdata", "accounts") is False
    assert router.allow_migrate("userdata", "audit") is False


@pytest.mark.django_db(databases=["default", "userdata"])
def test_tables_live_only_where_the_router_says():
    userdata_tables = set(connections["userdata"].introspection.table_names())
    default_tables = set(connections["default"].introspection.table_names())
    assert "userdata_account" in userdata_tables
    assert "userdata_account" not in default_tables
    assert "audit_auditevent" not in userdata_tables
    assert "accounts_user" not in userdata_tables


def test_catalogue_lists_the_five_categories():
    assert set(catalogue.CATEGORIES) == {"profile", "ip_logs", "devices", "location", "contacts"}
    for category in catalogue.CATEGORIES.values():
        names = {field.attname for field in category.model._meta.concrete_fields}
        assert set(category.fields) <= names, category.name
        assert category.subject_field in names
        assert category.time_field is None or category.time_field in names
    assert "content" not in " ".join(catalogue.CATEGORIES["contacts"].fields)


def _snapshot(guard) -> list:
    # This checks the seeder itself, so it reads the store directly, with the guard's leave.
    with guard.allow():
        return _read_snapshot()


def _read_snapshot() -> list:
    return [
        list(Account.objects.order_by("id").values_list("id", "handle", "email", "phone", "created_at")),
        list(
            LoginEvent.objects.order_by("account_id", "occurred_at", "ip").values_list(
                "account_id", "ip", "occurred_at"
            )
        ),
    ]


@pytest.mark.django_db(databases=["default", "userdata"])
def test_seeding_is_deterministic_for_a_seed(userdata_guard):
    counts = seed_userdata(accounts=60, seed=7, anchor=ANCHOR)
    first = _snapshot(userdata_guard)
    seed_userdata(accounts=60, seed=7, anchor=ANCHOR)
    assert _snapshot(userdata_guard) == first
    assert counts["accounts"] == 60 and counts["ip_logs"] > 60
    seed_userdata(accounts=60, seed=8, anchor=ANCHOR)
    assert _snapshot(userdata_guard) != first


@pytest.mark.django_db(databases=["default", "userdata"])
def test_seeded_events_fall_in_the_year_before_the_anchor(userdata_guard):
    seed_userdata(accounts=30, seed=3, anchor=ANCHOR)
    with userdata_guard.allow():
        times = list(LoginEvent.objects.values_list("occurred_at", flat=True))
    assert all((ANCHOR - t).days <= 366 and t <= ANCHOR for t in times)
