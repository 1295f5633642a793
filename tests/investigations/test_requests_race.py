"""Two reviewers deciding at the same moment: exactly one outcome, at most one grant.

Real concurrency needs real row locks: PostgreSQL, threads with their own connections, and
committed data (a transactional test).
"""

import threading

import pytest
from django.contrib.auth.models import Group
from django.db import connections

from accounts.roles import ALL_ROLES
from audit.ledger import GENESIS_HASH
from audit.models import ChainHead
from investigations import actions
from investigations.errors import InvalidTransition
from investigations.models import Decision, Grant, RequestStatus

from .fixtures import file_request

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=["default", "userdata"], transaction=True)]


@pytest.fixture(autouse=True)
def migrated_rows(transactional_db):
    """A transactional test flushes the tables, including rows that migrations made."""
    ChainHead.objects.get_or_create(pk=1, defaults={"seq": 0, "hash": GENESIS_HASH})
    for role in ALL_ROLES:
        Group.objects.get_or_create(name=role)


def _decide_together(request, reviewers, outcomes):
    barrier = threading.Barrier(len(reviewers))
    results: dict[str, object] = {}

    def decide(reviewer, outcome):
        try:
            barrier.wait(timeout=30)
            results[reviewer.username] = actions.request_decide(
                actor=reviewer, request=request, outcome=outcome, reason="Decided in a race."
            )
        except Exception as error:
            results[reviewer.username] = error
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=pair) for pair in zip(reviewers, outcomes, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_two_concurrent_approvals_make_one_grant(open_case, lead, reviewer, second_reviewer, store):
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    results = _decide_together(request, [reviewer, second_reviewer], ["approve", "approve"])
    outcomes = sorted(type(result).__name__ for result in results.values())
    assert outcomes == ["Decision", "InvalidTransition"], results
    assert Grant.objects.filter(request=request).count() == 1
    assert Decision.objects.filter(request=request).count() == 1
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED


def test_approve_and_reject_at_once_end_in_one_outcome(open_case, lead, reviewer, second_reviewer, store):
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    results = _decide_together(request, [reviewer, second_reviewer], ["approve", "reject"])
    assert sum(isinstance(result, InvalidTransition) for result in results.values()) == 1, results
    request.refresh_from_db()
    grants = Grant.objects.filter(request=request).count()
    assert (request.status, grants) in {(RequestStatus.APPROVED, 1), (RequestStatus.REJECTED, 0)}


def test_two_concurrent_protected_approvals_make_exactly_one_grant(
    open_case, lead, reviewer, senior_reviewer, admin_user, store
):
    """Without the lock each would see no earlier approval and neither would issue the grant."""
    actions.protected_subject_add(actor=admin_user, account_id=1, category="journalist")
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead, legal_basis="legal_process"))
    results = _decide_together(request, [reviewer, senior_reviewer], ["approve", "approve"])
    assert all(isinstance(result, Decision) for result in results.values()), results
    assert Grant.objects.filter(request=request).count() == 1
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED
