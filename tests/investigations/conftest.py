"""Fixtures for cases, requests and grants, built through the actions (the real path)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from accounts.roles import Role
from investigations import actions
from investigations.scope import Scope
from userdata.seed import seed_userdata

from ..conftest import make_user

JUSTIFICATION = "Needed to establish whether the account was used to exfiltrate the Q3 report."


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
    fields = {
        "title": "Leak of the Q3 report",
        "allegation": "The Q3 report reached a competitor before publication.",
        "case_type": "misconduct",
        "purpose": "Establish which internal account shared the report.",
    }
    fields.update(overrides)
    case = actions.case_open(actor=lead, team=list(team), **fields)
    return actions.case_approve(actor=reviewer, case=case)


@pytest.fixture
def open_case(lead, member, reviewer):
    """An approved, open case led by ``lead`` with ``member`` on the team."""
    return open_case_for(lead, reviewer, team=[member])


def window(days: int = 30) -> tuple[date, date]:
    end = timezone.now().date()
    return end - timedelta(days=days - 1), end


def file_request(case, actor, subjects=("1", "2"), categories=("ip_logs", "profile"), duration_hours=24, **extra):
    start, end = window()
    fields = {
        "subjects": list(subjects),
        "categories": list(categories),
        "window_start": start,
        "window_end": end,
        "justification": JUSTIFICATION,
        "legal_basis": "internal_policy",
        "duration_hours": duration_hours,
    }
    fields.update(extra)
    return actions.request_create(actor=actor, case=case, **fields)


@pytest.fixture
def submitted_request(open_case, lead, store):
    request = file_request(open_case, lead)
    return actions.request_submit(actor=lead, request=request)


@pytest.fixture
def active_grant(submitted_request, second_reviewer):
    """A grant to ``lead`` on accounts 1 and 2, ip_logs + profile, for the last 30 days, 24 h."""
    actions.request_decide(actor=second_reviewer, request=submitted_request, outcome="approve")
    submitted_request.refresh_from_db()
    return submitted_request.grant


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
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve")
    request.refresh_from_db()
    return request.grant


@pytest.fixture
def succeeded_query(wide_grant, lead):
    """An ip_logs query on the wide grant, run in-process to completion."""
    return actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs")


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
