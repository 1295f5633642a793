"""Invariant 11, the registry: weakening protection takes two senior legal reviewers and is loud;
a removed subject stays protected for the cooling period; every view of the registry is recorded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions, policy
from investigations.actions.oversight import alerts_scan
from investigations.errors import InvalidTransition
from investigations.models import Alert, AlertKind, ProposalStatus, ProtectedSubject, RegistryProposal

from .fixtures import file_request

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

ACCOUNT = 1


@pytest.fixture
def entry(admin_user):
    return actions.protected_subject_add(actor=admin_user, account_id=ACCOUNT, category="journalist", source="Press")


@pytest.fixture
def removal(entry, senior_reviewer):
    return actions.protected_weakening_propose(actor=senior_reviewer, subject=entry, reason="Left journalism.")


def still_protected(category: str = "journalist") -> None:
    assert policy.protected_categories([ACCOUNT], {}) == [category]


def weakening_events() -> list[str]:
    return list(
        AuditEvent.objects.filter(action__startswith="protected_subject.weakening")
        .order_by("seq")
        .values_list("action", flat=True)
    )


# --- two people ------------------------------------------------------------------------------------


def test_the_proposer_cannot_confirm_their_own_removal(removal, senior_reviewer):
    with pytest.raises(PermissionDenied) as error:
        actions.protected_weakening_confirm(actor=senior_reviewer, proposal=removal)
    assert "second senior legal reviewer" in str(error.value)
    removal.refresh_from_db()
    assert removal.status == ProposalStatus.PENDING
    assert ProtectedSubject.objects.listed().filter(account_id=ACCOUNT).exists()
    still_protected()


@pytest.mark.parametrize("persona", ["reviewer", "admin_user", "superuser", "auditor", "lead"])
def test_only_a_senior_reviewer_confirms(removal, persona, request):
    with pytest.raises(PermissionDenied):
        actions.protected_weakening_confirm(actor=request.getfixturevalue(persona), proposal=removal)
    removal.refresh_from_db()
    assert removal.status == ProposalStatus.PENDING
    still_protected()
    assert weakening_events() == [Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED]


@pytest.mark.parametrize("persona", ["reviewer", "admin_user", "superuser"])
def test_only_a_senior_reviewer_proposes(entry, persona, request):
    with pytest.raises(PermissionDenied):
        actions.protected_weakening_propose(actor=request.getfixturevalue(persona), subject=entry, reason="Why not.")
    assert not RegistryProposal.objects.exists() and not weakening_events()


def test_a_second_senior_reviewer_confirms_and_the_removal_takes_effect(removal, second_senior):
    actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    removal.refresh_from_db()
    assert removal.status == ProposalStatus.CONFIRMED and removal.decided_by == second_senior
    assert not ProtectedSubject.objects.listed().filter(account_id=ACCOUNT).exists()
    assert weakening_events() == [
        Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED,
        Action.PROTECTED_SUBJECT_WEAKENING_CONFIRMED,
    ]
    with pytest.raises(InvalidTransition):
        actions.protected_weakening_confirm(actor=second_senior, proposal=removal)


def test_a_weaker_category_is_a_proposal_too(entry, senior_reviewer, second_senior):
    assert policy.is_weaker("journalist", "activist") and not policy.is_weaker("activist", "journalist")
    with pytest.raises(ValidationError) as error:
        actions.protected_subject_change(
            actor=senior_reviewer, subject=entry, category="activist", note="", source="", reason="Blogs now."
        )
    assert "category" in error.value.message_dict
    proposal = actions.protected_weakening_propose(
        actor=senior_reviewer, subject=entry, category="activist", reason="Blogs now."
    )
    still_protected("journalist")
    actions.protected_weakening_confirm(actor=second_senior, proposal=proposal)
    still_protected("activist")


def test_a_stronger_or_equal_category_stays_one_person(entry, admin_user):
    actions.protected_subject_change(
        actor=admin_user, subject=entry, category="lawyer", note="", source="Bar roll", reason="Practises law."
    )
    still_protected("lawyer")
    assert not weakening_events()


def test_withdrawing_changes_nothing(removal, senior_reviewer, second_senior):
    actions.protected_weakening_withdraw(actor=senior_reviewer, proposal=removal, reason="Still writes.")
    removal.refresh_from_db()
    assert removal.status == ProposalStatus.WITHDRAWN
    still_protected()
    with pytest.raises(InvalidTransition):
        actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    assert weakening_events()[-1] == Action.PROTECTED_SUBJECT_WEAKENING_WITHDRAWN


def test_one_pending_proposal_per_entry_and_a_changed_entry_needs_a_new_one(
    removal, entry, senior_reviewer, second_senior, admin_user
):
    with pytest.raises(ValidationError):
        actions.protected_weakening_propose(actor=second_senior, subject=entry, reason="Again.")
    actions.protected_subject_change(
        actor=admin_user, subject=entry, category="lawyer", note="", source="", reason="Practises law."
    )
    with pytest.raises(InvalidTransition):  # what was proposed is not what is on the registry now
        actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    still_protected("lawyer")


# --- the subject stays protected while pending and during the cooling period ---------------------


def test_requests_follow_the_protected_policy_while_pending_and_cooling(
    removal, open_case, lead, store, second_senior, settings
):
    draft = file_request(open_case, lead, subjects=(str(ACCOUNT),), legal_basis="legal_process")
    assert draft.protected_categories == ["journalist"]
    # No oracle before a decision: a too-weak legal basis is not refused at the draft; the
    # protected policy still holds the request back at each decision (test_no_oracle.py).
    weak = file_request(open_case, lead, subjects=(str(ACCOUNT),))
    assert weak.protected_categories == ["journalist"]
    actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    cooling = file_request(open_case, lead, subjects=(str(ACCOUNT),), legal_basis="legal_process")
    assert cooling.protected_categories == ["journalist"]
    submitted = actions.request_submit(actor=lead, request=cooling)
    assert submitted.is_protected
    # once the cooling period is over, the account is an ordinary subject
    ProtectedSubject.objects.filter(account_id=ACCOUNT).update(
        removed_at=timezone.now() - timedelta(days=settings.CUSTOS["REGISTRY_COOLING_DAYS"], minutes=1)
    )
    later = file_request(open_case, lead, subjects=(str(ACCOUNT),))
    assert later.protected_categories == [] and not later.is_protected


def test_the_cooling_period_is_a_setting(removal, second_senior, settings):
    actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    settings.CUSTOS = {**settings.CUSTOS, "REGISTRY_COOLING_DAYS": 0}
    assert policy.protected_categories([ACCOUNT], {}) == []


def test_re_adding_a_removed_account_lists_it_again(removal, second_senior, admin_user):
    actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    again = actions.protected_subject_add(actor=admin_user, account_id=ACCOUNT, category="lawyer")
    assert again.pk == removal.subject_id and not again.is_removed
    still_protected("lawyer")


# --- loud: critical alerts at once ------------------------------------------------------------------


def test_proposal_and_confirmation_each_raise_a_critical_alert_at_once(removal, second_senior, senior_reviewer):
    proposed = Alert.objects.get(kind=AlertKind.REGISTRY_WEAKENING_PROPOSED)  # no scan has run
    assert proposed.severity == "critical" and proposed.user == senior_reviewer
    assert proposed.details["account_id"] == ACCOUNT and "Left journalism." in proposed.summary
    actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    confirmed = Alert.objects.get(kind=AlertKind.REGISTRY_WEAKENING_CONFIRMED)
    assert confirmed.severity == "critical" and confirmed.user == second_senior
    assert confirmed.details["proposed_by"] == senior_reviewer.username and confirmed.details["protected_until"]
    for alert in (proposed, confirmed):
        assert AuditEvent.objects.filter(action=Action.ALERT_RAISED, target_id=str(alert.pk)).exists()
    alerts_scan()  # the scan meets the same events later and raises nothing twice
    assert Alert.objects.filter(kind__startswith="registry_weakening").count() == 2


def test_alerts_are_emailed_on_commit(entry, senior_reviewer, auditor, mailoutbox, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        actions.protected_weakening_propose(actor=senior_reviewer, subject=entry, reason="Left journalism.")
    assert any("registry" in message.subject.lower() or "registry" in message.body for message in mailoutbox)


# --- pages and the admin ------------------------------------------------------------------------------


def test_removing_from_the_page_is_only_a_proposal(entry, senior_reviewer, client):
    client.force_login(senior_reviewer)
    remove = reverse("investigations:protected_remove", args=[entry.pk])
    assert client.post(remove, {"reason": "Left journalism."}).status_code == 302
    assert ProtectedSubject.objects.listed().filter(account_id=ACCOUNT).exists()
    still_protected()
    page = client.get(reverse("investigations:protected_list")).content.decode()
    assert "Awaiting a second senior reviewer" in page and "Your proposal" in page
    proposal = RegistryProposal.objects.get()
    confirm = reverse("investigations:protected_proposal_confirm", args=[proposal.pk])
    assert confirm not in page  # the proposer is not offered the confirmation
    assert client.post(confirm).status_code == 403
    still_protected()


def test_a_weaker_category_from_the_page_is_a_proposal(entry, senior_reviewer, client):
    client.force_login(senior_reviewer)
    edit = reverse("investigations:protected_edit", args=[entry.pk])
    response = client.post(edit, {"category": "activist", "source": "", "note": "", "reason": "Blogs now."})
    assert response.status_code == 302
    still_protected("journalist")
    assert RegistryProposal.objects.get().category_after == "activist"


def test_the_second_senior_reviewer_confirms_on_the_page(removal, second_senior, reviewer, client):
    confirm = reverse("investigations:protected_proposal_confirm", args=[removal.pk])
    client.force_login(reviewer)
    assert client.post(confirm).status_code == 404
    still_protected()
    client.force_login(second_senior)
    assert confirm in client.get(reverse("investigations:protected_list")).content.decode()
    assert client.post(confirm).status_code == 302
    assert not ProtectedSubject.objects.listed().exists()
    page = client.get(reverse("investigations:protected_list")).content.decode()
    assert "removed: protected until" in page


def test_withdrawing_on_the_page_needs_a_reason(removal, senior_reviewer, client):
    client.force_login(senior_reviewer)
    withdraw = reverse("investigations:protected_proposal_withdraw", args=[removal.pk])
    response = client.post(withdraw, {"reason": ""})
    assert response.status_code == 200 and "This field is required." in response.content.decode()
    assert client.post(withdraw, {"reason": "Still writes."}).status_code == 302
    removal.refresh_from_db()
    assert removal.status == ProposalStatus.WITHDRAWN


def test_the_admin_offers_no_way_around(entry, admin_user, client):
    client.force_login(admin_user)
    change = reverse("admin:investigations_protectedsubject_change", args=[entry.pk])
    response = client.post(change, {"category": "activist", "source": "", "note": "", "reason": "Blogs now."})
    assert response.status_code == 200 and "two senior legal" in response.content.decode()
    delete = reverse("admin:investigations_protectedsubject_delete", args=[entry.pk])
    assert client.get(delete).status_code == 403 and client.post(delete, {"post": "yes"}).status_code == 403
    changelist = reverse("admin:investigations_protectedsubject_changelist")
    client.post(changelist, {"action": "delete_selected", "_selected_action": [entry.pk]})
    still_protected()
    assert not weakening_events()


def test_views_of_the_registry_are_recorded(entry, senior_reviewer, admin_user, client):
    client.force_login(senior_reviewer)
    client.get(reverse("investigations:protected_list"))
    client.get(reverse("investigations:protected_edit", args=[entry.pk]))
    client.force_login(admin_user)
    client.get(reverse("admin:investigations_protectedsubject_changelist"))
    client.get(reverse("admin:investigations_protectedsubject_change", args=[entry.pk]))
    views = AuditEvent.objects.filter(action=Action.PROTECTED_SUBJECT_VIEWED).order_by("seq")
    assert [(event.actor_id, event.details["page"], event.details.get("account_id")) for event in views] == [
        (senior_reviewer.pk, "protected_list", None),
        (senior_reviewer.pk, "protected_edit", ACCOUNT),
        (admin_user.pk, "admin_list", None),
        (admin_user.pk, "admin_change", ACCOUNT),
    ]


def test_a_removed_entry_is_not_editable_and_the_admin_can_add_it_again(removal, second_senior, admin_user, client):
    actions.protected_weakening_confirm(actor=second_senior, proposal=removal)
    client.force_login(second_senior)
    assert client.get(reverse("investigations:protected_edit", args=[removal.subject_id])).status_code == 404
    assert client.get(reverse("investigations:protected_remove", args=[removal.subject_id])).status_code == 404
    client.force_login(admin_user)
    added = client.post(
        reverse("admin:investigations_protectedsubject_add"), {"account_id": str(ACCOUNT), "category": "lawyer"}
    )
    assert added.status_code == 302, added.content.decode()[:2000]
    assert ProtectedSubject.objects.listed().get(account_id=ACCOUNT).pk == removal.subject_id
    still_protected("lawyer")
