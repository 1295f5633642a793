"""Step-up on the pages: every protected action, with a stale second-factor check, changes nothing
and asks for a code in the same form (typed values kept); a good code completes it in the same
submit; a fresh check goes straight through. Then the insider's attacks on it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.cache import cache
from django.urls import reverse

from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from investigations import actions, policy
from investigations.models import (
    Case,
    CaseStatus,
    DataPullRequest,
    GrantStatus,
    ProposalStatus,
    ProtectedSubject,
    RegistryProposal,
    RequestStatus,
)
from tests.conftest import make_user
from tests.stepup import age_second_factor, enrol, secret_of, stepped_up, totp_code, unused_code, wrong_code

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

REASON = "Proportionate: two accounts, thirty days, the leak window — keep this text."
OTHER_SECRET = "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU"


@dataclass
class Scenario:
    actor: Any
    url: str
    data: dict
    done: Callable[[], bool]
    kept: str = ""  # typed text the re-rendered form must still hold


def _decide(request) -> Scenario:
    data_request = request.getfixturevalue("submitted_request")
    member = request.getfixturevalue("member")
    return Scenario(
        actor=request.getfixturevalue("second_reviewer"),
        url=reverse("investigations:request_decide", args=[data_request.pk]),
        data={"outcome": "approve", "reason": REASON, "grantees": [member.pk]},
        done=lambda: DataPullRequest.objects.get(pk=data_request.pk).status == RequestStatus.APPROVED,
        kept=REASON,
    )


def _return_request(request) -> Scenario:
    data_request = request.getfixturevalue("submitted_request")
    return Scenario(
        actor=request.getfixturevalue("second_reviewer"),
        url=reverse("investigations:request_decide", args=[data_request.pk]),
        data={"outcome": "return", "reason": REASON},
        done=lambda: DataPullRequest.objects.get(pk=data_request.pk).status == RequestStatus.RETURNED,
        kept=REASON,
    )


def _pending_case(request) -> Case:
    lead = request.getfixturevalue("lead")
    return actions.case_open(
        actor=lead, title="Expense fraud", allegation="Claims twice.", case_type="misconduct", purpose="Check claims."
    )


def _approve_case(request) -> Scenario:
    case = _pending_case(request)
    return Scenario(
        actor=request.getfixturevalue("reviewer"),
        url=reverse("investigations:case_approve", args=[case.pk]),
        data={},
        done=lambda: Case.objects.get(pk=case.pk).status == CaseStatus.OPEN,
    )


def _reject_case(request) -> Scenario:
    case = _pending_case(request)
    return Scenario(
        actor=request.getfixturevalue("reviewer"),
        url=reverse("investigations:case_reject", args=[case.pk]),
        data={"reason": REASON},
        done=lambda: Case.objects.get(pk=case.pk).status == CaseStatus.REJECTED,
        kept=REASON,
    )


def _revoke(request) -> Scenario:
    grant = request.getfixturevalue("active_grant")
    return Scenario(
        actor=request.getfixturevalue("second_reviewer"),
        url=reverse("investigations:grant_revoke", args=[grant.pk]),
        data={"reason": REASON},
        done=lambda: grant.__class__.objects.get(pk=grant.pk).status == GrantStatus.REVOKED,
        kept=REASON,
    )


def _entry(request) -> ProtectedSubject:
    return actions.protected_subject_add(
        actor=request.getfixturevalue("admin_user"), account_id=7, category="journalist", source="Press card"
    )


def _registry_add(request) -> Scenario:
    return Scenario(
        actor=request.getfixturevalue("senior_reviewer"),
        url=reverse("investigations:protected_add"),
        data={"account_id": "9", "category": "lawyer", "source": "Bar register 4411", "note": REASON},
        done=lambda: ProtectedSubject.objects.listed().filter(account_id=9).exists(),
        kept=REASON,
    )


def _registry_change(request) -> Scenario:
    entry = _entry(request)
    return Scenario(
        actor=request.getfixturevalue("senior_reviewer"),
        url=reverse("investigations:protected_edit", args=[entry.pk]),
        data={"category": "journalist", "source": "Union membership list", "note": "", "reason": REASON},
        done=lambda: ProtectedSubject.objects.get(pk=entry.pk).source == "Union membership list",
        kept=REASON,
    )


def _registry_propose_weaker(request) -> Scenario:
    entry = _entry(request)
    assert policy.is_weaker("journalist", "other")
    return Scenario(
        actor=request.getfixturevalue("senior_reviewer"),
        url=reverse("investigations:protected_edit", args=[entry.pk]),
        data={"category": "other", "source": "Press card", "note": "", "reason": REASON},
        done=lambda: RegistryProposal.objects.filter(subject=entry).exists(),
        kept=REASON,
    )


def _registry_propose_removal(request) -> Scenario:
    entry = _entry(request)
    return Scenario(
        actor=request.getfixturevalue("senior_reviewer"),
        url=reverse("investigations:protected_remove", args=[entry.pk]),
        data={"reason": REASON},
        done=lambda: RegistryProposal.objects.filter(subject=entry).exists(),
        kept=REASON,
    )


def _registry_confirm(request) -> Scenario:
    entry = _entry(request)
    proposer = request.getfixturevalue("senior_reviewer")
    proposal = actions.protected_weakening_propose(actor=proposer, subject=entry, reason="Left journalism.")
    return Scenario(
        actor=request.getfixturevalue("second_senior"),
        url=reverse("investigations:protected_proposal_confirm", args=[proposal.pk]),
        data={},
        done=lambda: RegistryProposal.objects.get(pk=proposal.pk).status == ProposalStatus.CONFIRMED,
    )


def _hold_lift(request) -> Scenario:
    case = request.getfixturevalue("open_case")
    reviewer = request.getfixturevalue("reviewer")  # approved the case: it sees it
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation expected.")
    return Scenario(
        actor=reviewer,
        url=reverse("investigations:case_legal_hold", args=[case.pk]),
        data={"action": "lift", "reason": REASON},
        done=lambda: Case.objects.get(pk=case.pk).legal_hold_lift_by_id == reviewer.pk,
        kept=REASON,
    )


SCENARIOS = {
    "request_approve": _decide,
    "request_return": _return_request,
    "case_approve": _approve_case,
    "case_reject": _reject_case,
    "grant_revoke": _revoke,
    "registry_add": _registry_add,
    "registry_change": _registry_change,
    "registry_propose_weaker": _registry_propose_weaker,
    "registry_propose_removal": _registry_propose_removal,
    "registry_confirm": _registry_confirm,
    "legal_hold_lift": _hold_lift,
}


@pytest.fixture(autouse=True)
def _forget_used_codes():
    """allauth remembers used codes in the cache; ids repeat from one test to the next."""
    cache.clear()
    yield
    cache.clear()


def events(action: str, user) -> int:
    return AuditEvent.objects.filter(action=action, actor=user).count()


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request, store) -> Scenario:
    return SCENARIOS[request.param](request)


def test_a_stale_check_changes_nothing_and_asks_for_the_code_in_the_same_form(scenario, client):
    stepped_up(client, scenario.actor)
    age_second_factor(client)
    response = client.post(scenario.url, scenario.data)
    page = response.content.decode()
    assert response.status_code == 200, page[:500]
    assert not scenario.done(), "the action ran without a recent second factor"
    assert 'name="step_up_code"' in page and "Confirm with your authenticator code" in page
    assert 'for="id_step_up_code"' in page and " autofocus" in page and 'role="alert"' in page
    if scenario.kept:
        assert scenario.kept in page, "what was typed is lost"
    # The same submit with a good code completes it and records the step-up.
    response = client.post(scenario.url, {**scenario.data, "step_up_code": unused_code(scenario.actor)})
    assert response.status_code == 302, response.content.decode()[:500]
    assert scenario.done()
    passed = AuditEvent.objects.filter(action=Action.AUTH_SECOND_FACTOR_PASSED, actor=scenario.actor).last()
    assert passed is not None and passed.details["method"] == "step_up"


def test_a_wrong_code_is_a_field_error_changes_nothing_and_is_recorded(scenario, client):
    stepped_up(client, scenario.actor)
    age_second_factor(client)
    wrong = wrong_code(scenario.actor)
    response = client.post(scenario.url, {**scenario.data, "step_up_code": wrong})
    page = response.content.decode()
    assert response.status_code == 200 and not scenario.done()
    assert 'id="id_step_up_code_error"' in page and 'aria-invalid="true"' in page
    assert events(Action.AUTH_SECOND_FACTOR_FAILED, scenario.actor) == 1
    if scenario.kept:
        assert scenario.kept in page


def test_a_fresh_check_goes_straight_through(scenario, client):
    stepped_up(client, scenario.actor)
    response = client.post(scenario.url, scenario.data)
    assert response.status_code == 302 and scenario.done()
    assert events(Action.AUTH_SECOND_FACTOR_PASSED, scenario.actor) == 0  # nothing asked, nothing recorded


def test_without_an_enrolled_factor_the_action_is_refused_with_a_link_to_enrolment(store, active_grant, lead, client):
    client.force_login(lead)  # an investigator, no authenticator
    url = reverse("investigations:grant_revoke", args=[active_grant.pk])
    page = client.get(url).content.decode()
    assert "needs a second factor, and your account has none" in page
    response = client.post(url, {"reason": REASON, "step_up_code": "000000"})
    assert response.status_code == 200 and REASON in response.content.decode()
    active_grant.refresh_from_db()
    assert active_grant.status == GrantStatus.ACTIVE


def test_the_window_is_the_setting(scenario, client, settings):
    settings.CUSTOS_STEP_UP_MINUTES = 30
    stepped_up(client, scenario.actor)
    age_second_factor(client, minutes=20)
    assert client.post(scenario.url, scenario.data).status_code == 302 and scenario.done()


# --- the insider's attacks ------------------------------------------------------------------


def test_a_stolen_session_cookie_without_the_authenticator_cannot_decide(submitted_request, second_reviewer, client):
    """The thief has the cookie (signed in, factor checked long ago), not the phone: every guess
    fails, and after the lockout's limit even the right code is refused."""
    stepped_up(client, second_reviewer)
    age_second_factor(client)
    url = reverse("investigations:request_decide", args=[submitted_request.pk])
    for guess in ("000000", "123456", "111111", "999999", "424242"):
        client.post(url, {"outcome": "approve", "reason": REASON, "step_up_code": guess})
    response = client.post(url, {"outcome": "approve", "reason": REASON, "step_up_code": unused_code(second_reviewer)})
    assert response.status_code == 200
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED
    assert events(Action.AUTH_SECOND_FACTOR_FAILED, second_reviewer) == 6


def test_the_same_code_cannot_be_used_twice(store, request, client):
    """A code seen over a shoulder (or replayed) within its 30 seconds is refused the second time."""
    first, second = _reject_case(request), _approve_case(request)
    stepped_up(client, first.actor)
    code = unused_code(first.actor)
    age_second_factor(client)
    assert client.post(first.url, {**first.data, "step_up_code": code}).status_code == 302
    age_second_factor(client)
    response = client.post(second.url, {**second.data, "step_up_code": code})
    assert response.status_code == 200 and not second.done()
    assert events(Action.AUTH_SECOND_FACTOR_FAILED, first.actor) == 1


def test_a_code_from_another_users_authenticator_is_refused(store, request, client):
    scenario = _decide(request)
    accomplice = make_user("accomplice", [Role.INVESTIGATOR])
    other = enrol(accomplice, OTHER_SECRET)
    stepped_up(client, scenario.actor)
    age_second_factor(client)
    response = client.post(scenario.url, {**scenario.data, "step_up_code": totp_code(other)})
    assert response.status_code == 200 and not scenario.done()
    assert totp_code(other) != totp_code(secret_of(scenario.actor))


def test_the_protected_approval_confirmation_keeps_the_step_up(protected_request, second_reviewer, client):
    """Approving a protected request takes a confirmation page; the code is asked before it and
    is never carried in it."""
    stepped_up(client, second_reviewer)
    age_second_factor(client)
    url = reverse("investigations:request_decide", args=[protected_request.pk])
    code = unused_code(second_reviewer)
    response = client.post(url, {"outcome": "approve", "reason": REASON, "step_up_code": code})
    page = response.content.decode()
    assert "Confirm approval" in page and "step_up_code" not in page
