"""Fixtures for cases, requests and grants, built through the actions (the real path): the
``…ActionFactory`` factories of ``custos_testing.factories``.

A plugin of the whole suite (``pytest_plugins`` in ``tests/conftest.py``): the page, API, UI
and browser tests use the same objects without importing them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.utils import timezone

from accounts.roles import Role
from custos_testing.factories import (
    JUSTIFICATION,
    CaseActionFactory,
    GrantActionFactory,
    QueryActionFactory,
    RequestActionFactory,
    window,
)
from investigations import actions
from investigations.scope import Scope
from userdata.seed import seed_userdata

from ..conftest import make_user
from .matrix import FIXTURE_OF

__all__ = ["JUSTIFICATION", "window"]  # defined with the factories, imported from here too


@pytest.fixture
def store(db, django_db_blocker):
    """A small deterministic user-data store (accounts 1..40), events in the year before today."""
    today = timezone.now().date()
    seed_userdata(accounts=40, seed=11, anchor=datetime(today.year, today.month, today.day, tzinfo=UTC))
    return today


@pytest.fixture
def second_senior(db):
    """A second senior legal reviewer: weakening the registry takes two."""
    return make_user("second_senior", [Role.LEGAL_REVIEWER, Role.SENIOR_LEGAL_REVIEWER])


def open_case_for(lead, reviewer, team=(), **overrides):
    return CaseActionFactory(lead=lead, reviewer=reviewer, team=team, **overrides)


@pytest.fixture
def open_case(lead, member, reviewer):
    """An approved, open case led by ``lead`` with ``member`` on the team."""
    return open_case_for(lead, reviewer, team=[member])


def file_request(case, actor, subjects=("1", "2"), categories=("ip_logs", "profile"), duration_hours=24, **extra):
    return RequestActionFactory(
        case=case, requested_by=actor, subjects=subjects, categories=categories, duration_hours=duration_hours, **extra
    )


@pytest.fixture
def submitted_request(open_case, lead, store):
    request = file_request(open_case, lead)
    return actions.request_submit(actor=lead, request=request)


@pytest.fixture
def active_grant(submitted_request, second_reviewer):
    """A grant to ``lead`` on accounts 1 and 2, ip_logs + profile, for the last 30 days, 24 h."""
    return GrantActionFactory(request=submitted_request, reviewer=second_reviewer)


def narrowed(request, **changes) -> Scope:
    fields = {
        "subjects": tuple(request.subjects),
        "categories": tuple(request.categories),
        "window_start": request.window_start,
        "window_end": request.window_end,
        "duration_hours": request.duration_hours,
    }
    fields.update(changes)
    return Scope(**fields)


# --- requests, decisions and grants (issue 4) ----------------------------------------------


@pytest.fixture
def draft_request(open_case, lead, store):
    """A draft by ``lead`` on accounts 1 and 2."""
    return file_request(open_case, lead)


@pytest.fixture
def protected_request(open_case, lead, store, admin_user):
    """A submitted request naming account 1, which is on the protected-subject registry (journalist:
    the policy accepts only legal process or imminent harm as the legal basis)."""
    actions.protected_subject_add(actor=admin_user, account_id=1, category="journalist")
    return actions.request_submit(actor=lead, request=file_request(open_case, lead, legal_basis="legal_process"))


# --- queries (gateway) --------------------------------------------------------------------


@pytest.fixture
def wide_grant(open_case, lead, second_reviewer, store):
    """A grant to ``lead`` on accounts 1-3, ip_logs + location, over the last 360 days (rows exist)."""
    start, end = window(360)
    request = file_request(
        open_case,
        lead,
        subjects=("1", "2", "3"),
        categories=("ip_logs", "location"),
        window_start=start,
        window_end=end,
    )
    actions.request_submit(actor=lead, request=request)
    return GrantActionFactory(request=request, reviewer=second_reviewer)


@pytest.fixture
def succeeded_query(wide_grant, lead):
    """An ip_logs query on the wide grant, run in-process to completion."""
    return QueryActionFactory(grant=wide_grant, user=lead, category="ip_logs")


@pytest.fixture
def migrated_rows(transactional_db):
    """Rows the migrations create (roles, ledger head) that a transactional test's flush removes."""
    from django.contrib.auth.models import Group

    from accounts.roles import Role
    from audit.ledger import GENESIS_HASH
    from audit.models import ChainHead

    for role in Role:
        Group.objects.get_or_create(name=str(role))
    ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})


# --- evidence ----------------------------------------------------------------------------


@pytest.fixture
def evidence_store(settings, tmp_path):
    """The ``evidence`` storage alias on a folder of this test's own (returned)."""
    folder = tmp_path / "evidence"
    settings.STORAGES = {
        **settings.STORAGES,
        "evidence": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(folder)}},
    }
    return folder


@pytest.fixture
def cast(request, second_reviewer, evidence_store) -> dict:
    """Every persona of the matrices (``matrix.FIXTURE_OF``), by column name."""
    people = {name: request.getfixturevalue(fixture) for name, fixture in FIXTURE_OF.items() if fixture}
    people["other_investigator"] = people["other"]
    people["second_reviewer"] = second_reviewer
    return people
