"""Protected subjects and oversight (issue 11, part A): resolution by indirect identifiers, the
protected-request policy, purpose limits by case type, pivot control, the query tripwire and the
registry with its audited changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions, gateway
from investigations.actions.oversight import alerts_scan
from investigations.errors import QueryDenied
from investigations.models import (
    Alert,
    AlertKind,
    DataPullRequest,
    Decision,
    DenialReason,
    Grant,
    ProtectedSubject,
    QueryStatus,
    RequestStatus,
)
from userdata.catalogue import CATEGORIES

from .fixtures import file_request, open_case_for
from .oversight_data import (
    COLLEAGUE,
    DEVICE,
    EMAIL,
    IP,
    JOURNALIST,
    PHONE,
    SECOND_ACCOUNT,
    add_press_accounts,
    add_rows_for_tripwire,
)

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


@pytest.fixture
def press(store):
    add_press_accounts()


@pytest.fixture
def journalist(press, admin_user):
    return actions.protected_subject_add(
        actor=admin_user, account_id=JOURNALIST, category="journalist", source="Press card 2026-117"
    )


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


# --- resolution ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "kind", "value"),
    [
        ("jane@press.example", "email", "jane@press.example"),
        ("email:Jane@Press.example", "email", "Jane@Press.example"),
        ("+49 1555-0001", "phone", "+4915550001"),
        ("198.51.100.7", "ip", "198.51.100.7"),
        ("2001:DB8::1", "ip", "2001:db8::1"),
        ("device:dev-press-901", "device", "dev-press-901"),
        ("0042", "account_id", "42"),
        ("@press_jane", "handle", "press_jane"),
        ("press_jane", "handle", "press_jane"),
    ],
)
def test_identifiers_are_classified(typed, kind, value):
    assert gateway.classify(typed) == (kind, value)


@pytest.mark.parametrize("identifier", [EMAIL, PHONE, IP, f"device:{DEVICE}"])
def test_a_journalist_named_only_indirectly_makes_the_request_protected(
    identifier, open_case, lead, journalist, userdata_guard
):
    request = file_request(open_case, lead, subjects=[identifier], legal_basis="legal_process")
    assert JOURNALIST in request.subjects
    assert request.is_protected and request.protected_categories == ["journalist"]
    entry = request.subject_inputs[0]
    assert entry["input"] == identifier and JOURNALIST in entry["accounts"]
    assert entry["kind"] == gateway.classify(identifier)[0]
    lookup = events(Action.SUBJECT_LOOKUP)[-1]
    assert lookup.details["identifiers"] == [identifier] and lookup.case_reference == open_case.reference


def test_an_ip_resolves_only_to_logins_inside_the_request_window(open_case, lead, press):
    request = file_request(open_case, lead, subjects=[IP])
    assert sorted(request.subjects) == [JOURNALIST, COLLEAGUE]
    end = timezone.now().date() - timedelta(days=10)
    # Reaching no account is no error for the requester (invariant 10); the reviewers see it.
    earlier = file_request(open_case, lead, subjects=[IP], window_start=end - timedelta(days=30), window_end=end)
    assert earlier.subjects == [] and earlier.subject_inputs == [{"input": IP, "kind": "ip", "accounts": []}]


def test_a_second_account_on_the_journalists_phone_is_protected(open_case, lead, journalist):
    request = file_request(open_case, lead, subjects=["jane_alt"], legal_basis="imminent_harm")
    assert request.subjects == [SECOND_ACCOUNT]
    assert request.is_protected and request.linked_subjects == {str(SECOND_ACCOUNT): [JOURNALIST]}


def test_fan_out_above_the_cap_includes_none_and_only_reviewers_are_told(
    open_case, lead, press, settings, reviewer, client
):
    settings.CUSTOS = {**settings.CUSTOS, "MAX_RESOLVED_PER_IDENTIFIER": 1}
    request = file_request(open_case, lead, subjects=[IP, "1"])
    assert request.subjects == [1]
    assert request.subject_inputs[0] == {"input": IP, "kind": "ip", "accounts": [], "too_broad": True}
    assert len(events(Action.SUBJECT_LOOKUP)) == 1
    actions.request_submit(actor=lead, request=request)
    client.force_login(reviewer)
    page = client.get(reverse("investigations:request_detail", args=[request.pk])).content.decode()
    assert "more than 1 accounts: none included" in page
    client.force_login(lead)
    assert (
        "none included" not in client.get(reverse("investigations:request_detail", args=[request.pk])).content.decode()
    )


def test_an_unknown_account_id_or_handle_is_still_a_field_error(open_case, lead, press):
    with pytest.raises(ValidationError) as error:
        file_request(open_case, lead, subjects=["no_such_handle", EMAIL])
    assert "no_such_handle" in error.value.message_dict["subjects"][0] and EMAIL not in str(error.value)
    assert not DataPullRequest.objects.exists()
    assert len(events(Action.SUBJECT_LOOKUP)) == 1  # the refused lookup is still on the ledger


def test_an_email_reaching_a_named_account_is_not_a_duplicate(open_case, lead, press):
    request = file_request(open_case, lead, subjects=[str(JOURNALIST), EMAIL])
    assert request.subjects == [JOURNALIST]


# --- protected-request policy -------------------------------------------------------------------


@pytest.mark.parametrize("basis", ["internal_policy", "regulatory", "other"])
def test_journalist_needs_legal_process_or_imminent_harm(basis, open_case, lead, journalist, reviewer, senior_reviewer):
    """The draft and the submission go through (the team must not learn of the registry); no
    reviewer can approve, and the reviewer who returns it writes their own reason."""
    request = file_request(open_case, lead, subjects=[EMAIL], legal_basis=basis, legal_basis_other="A reason")
    actions.request_submit(actor=lead, request=request)
    for approver in (senior_reviewer, reviewer):
        with pytest.raises(ValidationError) as error:
            actions.request_decide(actor=approver, request=request, outcome="approve")
        assert "legal basis must be" in error.value.message_dict["outcome"][0]
    assert not Decision.objects.exists() and not Grant.objects.exists()
    actions.request_decide(actor=reviewer, request=request, outcome="return", reason="Give a court order.")
    request.refresh_from_db()
    assert request.status == RequestStatus.RETURNED


def test_one_approval_is_not_enough_and_events_carry_the_contract(
    open_case, lead, journalist, reviewer, senior_reviewer
):
    request = file_request(open_case, lead, subjects=[PHONE], legal_basis="legal_process")
    actions.request_submit(actor=lead, request=request)
    submitted = events(Action.REQUEST_SUBMITTED)[-1].details
    # the phone is on both of her accounts
    assert submitted["protected"] == ["journalist"] and submitted["subjects"] == [JOURNALIST, SECOND_ACCOUNT]
    assert submitted["case_type"] == "misconduct" and submitted["legal_basis"] == "legal_process"

    actions.request_decide(actor=reviewer, request=request, outcome="approve")
    assert not Grant.objects.exists()
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED
    decided = events(Action.DECISION_RECORDED)[-1].details
    assert decided["outcome"] == "approve" and decided["protected"] == ["journalist"]
    assert decided["subjects"] == [JOURNALIST, SECOND_ACCOUNT]

    actions.request_decide(actor=senior_reviewer, request=request, outcome="approve")
    assert Grant.objects.get(request=request).subjects == [JOURNALIST, SECOND_ACCOUNT]


def test_protection_is_assessed_again_at_submission_and_oversight_alerted(open_case, lead, press, admin_user):
    request = file_request(open_case, lead, subjects=[EMAIL])  # not yet on the registry
    assert not request.is_protected
    actions.protected_subject_add(actor=admin_user, account_id=JOURNALIST, category="lawyer")
    actions.request_submit(actor=lead, request=request)
    request.refresh_from_db()
    assert request.status == RequestStatus.SUBMITTED and request.protected_categories == ["lawyer"]
    assert events(Action.REQUEST_SUBMITTED)[-1].details["protected"] == ["lawyer"]
    alerts_scan()
    assert Alert.objects.filter(kind=AlertKind.PROTECTED_REQUEST_SUBMITTED, request=request).exists()
    assert any("legal basis must be" in problem for problem in actions.approval_problems(request))


def test_a_link_registered_after_the_draft_is_found_at_submission(open_case, lead, press, admin_user):
    request = file_request(open_case, lead, subjects=["jane_alt"])
    assert not request.is_protected
    actions.protected_subject_add(actor=admin_user, account_id=JOURNALIST, category="activist")
    actions.request_submit(actor=lead, request=request)
    request.refresh_from_db()
    assert request.is_protected and request.linked_subjects == {str(SECOND_ACCOUNT): [JOURNALIST]}


def test_legal_basis_is_checked_again_at_decision(submitted_request, admin_user, reviewer, senior_reviewer):
    actions.protected_subject_add(actor=admin_user, account_id=2, category="journalist")
    with pytest.raises(ValidationError) as error:
        actions.request_decide(actor=senior_reviewer, request=submitted_request, outcome="approve")
    assert "cannot be approved" in error.value.message_dict["outcome"][0]
    assert not Decision.objects.exists() and not Grant.objects.exists()
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="reject", reason="Wrong legal basis.")
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.REJECTED


def test_policy_is_configurable_per_category(open_case, lead, press, admin_user, reviewer, settings):
    policy = {**settings.CUSTOS["PROTECTED_POLICY"], "activist": {"approvals": 1, "senior": 0, "legal_bases": None}}
    settings.CUSTOS = {**settings.CUSTOS, "PROTECTED_POLICY": policy}
    actions.protected_subject_add(actor=admin_user, account_id=COLLEAGUE, category="activist")
    request = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=[str(COLLEAGUE)]))
    assert request.is_protected
    actions.request_decide(actor=reviewer, request=request, outcome="approve")
    assert Grant.objects.filter(request=request).exists()


# --- purpose limits --------------------------------------------------------------------------


@pytest.fixture
def leak_case(lead, member, reviewer):
    return open_case_for(lead, reviewer, team=[member], case_type="leak")


def test_leak_case_location_of_a_non_employee_is_escalated_by_default(
    leak_case, lead, store, reviewer, senior_reviewer
):
    weak = actions.request_submit(
        actor=lead, request=file_request(leak_case, lead, subjects=["1"], categories=["location"])
    )
    with pytest.raises(ValidationError) as error:
        actions.request_decide(actor=senior_reviewer, request=weak, outcome="approve")
    assert "legal basis must be" in error.value.message_dict["outcome"][0]
    request = file_request(
        leak_case, lead, subjects=["1"], categories=["location", "profile"], legal_basis="legal_process"
    )
    assert request.purpose_limited == ["location"] and not request.is_protected
    actions.request_submit(actor=lead, request=request)
    assert events(Action.REQUEST_SUBMITTED)[-1].details["purpose_limit"] == ["location"]
    actions.request_decide(actor=reviewer, request=request, outcome="approve")
    assert not Grant.objects.exists()
    actions.request_decide(actor=senior_reviewer, request=request, outcome="approve")
    assert Grant.objects.filter(request=request).exists()


def test_leak_case_refuses_when_configured_to(leak_case, lead, store, settings, senior_reviewer):
    limits = {"leak": {"non_employee_categories": ["profile", "devices"], "otherwise": "refuse"}}
    settings.CUSTOS = {**settings.CUSTOS, "PURPOSE_LIMITS": limits}
    for category in ("location", "ip_logs", "contacts"):
        request = file_request(leak_case, lead, subjects=["1"], categories=[category], legal_basis="legal_process")
        actions.request_submit(actor=lead, request=request)
        with pytest.raises(ValidationError) as error:
            actions.request_decide(actor=senior_reviewer, request=request, outcome="approve")
        message = error.value.message_dict["outcome"][0]
        assert "leak case may not request" in message and category in message and "(1)" in message
    assert not Grant.objects.exists()


def test_purpose_limit_spares_employees_other_categories_and_other_case_types(leak_case, open_case, lead, store):
    employee = file_request(leak_case, lead, subjects=["5"], categories=["location"])  # every fifth is an employee
    assert employee.employee_subjects == [5] and employee.purpose_limited == []
    assert file_request(leak_case, lead, subjects=["1"], categories=["profile", "devices"]).purpose_limited == []
    assert file_request(open_case, lead, subjects=["1"], categories=["location"]).purpose_limited == []


# --- pivot control ---------------------------------------------------------------------------


def test_contacts_are_ids_and_metadata_and_a_contact_is_out_of_scope(open_case, lead, second_reviewer, press):
    request = file_request(open_case, lead, subjects=["1"], categories=["contacts", "ip_logs"])
    actions.request_submit(actor=lead, request=request)
    actions.request_decide(actor=second_reviewer, request=request, outcome="approve")
    grant = Grant.objects.get(request=request)
    query = actions.query_execute_now(actor=lead, grant=grant, category="contacts")
    assert query.status == QueryStatus.SUCCEEDED
    result = query.result
    assert result.columns == ["account_id", "contact_id", "kind", "created_at", "last_interaction_at"]
    assert {row[0] for row in result.rows} == {1}
    assert JOURNALIST in {row[1] for row in result.rows}
    with pytest.raises(QueryDenied) as denied:
        actions.query_submit(actor=lead, grant=grant, category="ip_logs", subjects=[JOURNALIST])
    assert denied.value.query.denial_reason == DenialReason.OUT_OF_SCOPE_SUBJECT
    assert events(Action.QUERY_DENIED)[-1].details["reason"] == DenialReason.OUT_OF_SCOPE_SUBJECT


# --- tripwire ----------------------------------------------------------------------------------


def test_tripwire_drops_rows_of_a_protected_account_and_records_it(active_grant, lead, journalist, monkeypatch):
    add_rows_for_tripwire()
    # A catalogue mistake: ip_logs filtered through the contacts graph reaches other accounts' logins.
    faulty = replace(CATEGORIES["ip_logs"], subject_field="account__connections__contact_id")
    monkeypatch.setitem(CATEGORIES, "ip_logs", faulty)
    query = actions.query_execute_now(actor=lead, grant=active_grant, category="ip_logs")
    assert query.status == QueryStatus.SUCCEEDED
    owners = {row[0] for row in query.result.rows}
    assert owners and owners <= {1, 2} and JOURNALIST not in owners
    (tripwire,) = events(Action.QUERY_TRIPWIRE)
    assert tripwire.target_id == str(query.pk) and tripwire.case_reference == active_grant.case.reference
    assert tripwire.details["protected_accounts"] == [JOURNALIST]
    assert tripwire.details["dropped_rows"] >= 1
    assert tripwire.details["category"] == "ip_logs" and tripwire.details["grant_id"] == active_grant.pk
    assert query.row_count == len(query.result.rows)
    # Oversight hears of it: the alert scan turns the event into a critical alert.
    alerts_scan()
    (alert,) = Alert.objects.filter(kind=AlertKind.TRIPWIRE)
    assert alert.severity == "critical" and alert.query_id == query.pk and alert.grant_id == active_grant.pk
    assert alert.details["protected_accounts"] == [JOURNALIST]


def test_tripwire_guards_a_mistake_in_a_category_s_own_columns(active_grant, lead, journalist, monkeypatch):
    """A mistake the PostgreSQL read writes itself (no join): a category filtered on the contact
    column instead of the owner reaches the journalist's connection to a named subject."""
    from userdata.models import Connection

    add_rows_for_tripwire()
    faulty = replace(
        CATEGORIES["ip_logs"],
        model=Connection,
        fields=("account_id", "contact_id", "kind", "last_interaction_at"),
        time_field="last_interaction_at",
        subject_field="contact",
    )
    monkeypatch.setitem(CATEGORIES, "ip_logs", faulty)
    query = actions.query_execute_now(actor=lead, grant=active_grant, category="ip_logs")
    assert query.status == QueryStatus.SUCCEEDED
    assert {row[0] for row in query.result.rows} <= {1, 2}
    (tripwire,) = events(Action.QUERY_TRIPWIRE)
    assert tripwire.details["protected_accounts"] == [JOURNALIST] and tripwire.details["dropped_rows"] >= 1


def test_no_tripwire_on_a_correct_catalogue(active_grant, lead, journalist):
    add_rows_for_tripwire()
    query = actions.query_execute_now(actor=lead, grant=active_grant, category="ip_logs")
    assert query.status == QueryStatus.SUCCEEDED and not events(Action.QUERY_TRIPWIRE)


# --- the registry --------------------------------------------------------------------------------


def test_registry_changes_are_audited(admin_user, senior_reviewer, second_senior):
    entry = actions.protected_subject_add(actor=senior_reviewer, account_id=77, category="lawyer", source="Bar roll")
    actions.protected_subject_change(
        actor=admin_user, subject=entry, category="journalist", note="", source="Press card", reason="Changed jobs."
    )
    proposal = actions.protected_weakening_propose(
        actor=senior_reviewer, subject=entry, reason="Retired from the press."
    )
    actions.protected_weakening_confirm(actor=second_senior, proposal=proposal)
    (added,) = events(Action.PROTECTED_SUBJECT_ADDED)
    assert added.actor_id == senior_reviewer.pk
    assert added.details == {"account_id": 77, "category": "lawyer", "source": "Bar roll"}
    (changed,) = events(Action.PROTECTED_SUBJECT_CHANGED)
    assert changed.details["before"]["category"] == "lawyer" and changed.details["after"]["category"] == "journalist"
    assert changed.details["reason"] == "Changed jobs."
    (proposed,) = events(Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED)
    assert proposed.actor_id == senior_reviewer.pk and proposed.details["reason"] == "Retired from the press."
    (removed,) = events(Action.PROTECTED_SUBJECT_WEAKENING_CONFIRMED)
    assert removed.actor_id == second_senior.pk and removed.details["before"]["category"] == "journalist"
    assert removed.details["kind"] == "remove" and removed.details["proposed_by"] == senior_reviewer.username
    assert not ProtectedSubject.objects.listed().exists()


def test_bad_registry_input_changes_nothing(admin_user, senior_reviewer, reviewer):
    entry = actions.protected_subject_add(actor=admin_user, account_id=77, category="lawyer")
    cases = [
        (lambda: actions.protected_subject_add(actor=admin_user, account_id=77, category="lawyer"), "account_id"),
        (lambda: actions.protected_subject_add(actor=admin_user, account_id=78, category="spy"), "category"),
        (lambda: actions.protected_subject_add(actor=admin_user, account_id=-3, category="lawyer"), "account_id"),
        (
            lambda: actions.protected_subject_change(
                actor=admin_user, subject=entry, category="minor", note="", source="", reason=" "
            ),
            "reason",
        ),
        (lambda: actions.protected_weakening_propose(actor=senior_reviewer, subject=entry, reason=""), "reason"),
    ]
    for call, field in cases:
        with pytest.raises(ValidationError) as error:
            call()
        assert field in error.value.message_dict, field
    for actor in (reviewer, admin_user):
        with pytest.raises(PermissionDenied):
            actions.protected_weakening_propose(actor=actor, subject=entry, reason="No.")
    assert list(ProtectedSubject.objects.values_list("account_id", "category")) == [(77, "lawyer")]
    assert len(AuditEvent.objects.filter(action__startswith="protected_subject.")) == 1


# --- pages -------------------------------------------------------------------------------------


REGISTRY_PAGES = ["protected_list", "protected_add", "protected_edit", "protected_remove"]


def _url(name: str, entry: ProtectedSubject) -> str:
    return reverse(f"investigations:{name}", args=[entry.pk] if name in ("protected_edit", "protected_remove") else [])


@pytest.mark.parametrize(
    "persona", ["lead", "reviewer", "auditor", "admin_user", "superuser", "outsider", "second_reviewer"]
)
def test_registry_page_is_404_for_everyone_but_senior_reviewers(persona, request, client, admin_user):
    entry = actions.protected_subject_add(actor=admin_user, account_id=77, category="lawyer")
    client.force_login(request.getfixturevalue(persona))
    for name in REGISTRY_PAGES:
        assert client.get(_url(name, entry)).status_code == 404, name
        assert client.post(_url(name, entry), {"reason": "x", "account_id": 5, "category": "minor"}).status_code == 404
    assert list(ProtectedSubject.objects.values_list("account_id", "category")) == [(77, "lawyer")]


def test_senior_reviewer_manages_the_registry_from_the_page(senior_reviewer, client):
    client.force_login(senior_reviewer)
    assert "Protected subjects" in client.get(reverse("home")).content.decode()
    response = client.post(
        reverse("investigations:protected_add"), {"account_id": "77", "category": "journalist", "source": "Masthead"}
    )
    assert response.status_code == 302
    entry = ProtectedSubject.objects.get(account_id=77)
    page = client.get(reverse("investigations:protected_list")).content.decode()
    assert "Masthead" in page and "Journalist" in page
    edit = reverse("investigations:protected_edit", args=[entry.pk])
    assert client.post(edit, {"category": "lawyer", "source": "Bar roll", "reason": "Checked."}).status_code == 302
    remove = reverse("investigations:protected_remove", args=[entry.pk])
    assert "Remove account 77 from the registry?" in client.get(remove).content.decode()
    assert client.post(remove, {"reason": "No longer practising."}).status_code == 302
    assert ProtectedSubject.objects.listed().filter(account_id=77).exists()  # a proposal, not a removal
    changes = AuditEvent.objects.filter(action__startswith="protected_subject.").exclude(
        action=Action.PROTECTED_SUBJECT_VIEWED
    )
    assert [event.action for event in changes] == [
        Action.PROTECTED_SUBJECT_ADDED,
        Action.PROTECTED_SUBJECT_CHANGED,
        Action.PROTECTED_SUBJECT_WEAKENING_PROPOSED,
    ]


@pytest.mark.parametrize(
    ("name", "data", "field_message"),
    [
        ("protected_add", {"account_id": "abc", "category": "journalist"}, "Enter a whole number."),
        ("protected_add", {"account_id": "77", "category": "journalist"}, "already exists"),
        ("protected_add", {"account_id": "78", "category": "spy"}, "Select a valid choice."),
        ("protected_edit", {"category": "minor", "reason": ""}, "This field is required."),
        ("protected_edit", {"category": "lawyer", "reason": "Same."}, "Nothing was changed."),
        ("protected_remove", {"reason": ""}, "This field is required."),
    ],
)
def test_bad_input_on_the_registry_page_is_a_field_error(name, data, field_message, senior_reviewer, client):
    entry = actions.protected_subject_add(actor=senior_reviewer, account_id=77, category="lawyer")
    client.force_login(senior_reviewer)
    response = client.post(_url(name, entry), data)
    assert response.status_code == 200 and field_message in response.content.decode()
    assert list(ProtectedSubject.objects.values_list("account_id", "category")) == [(77, "lawyer")]
    changes = AuditEvent.objects.filter(action__startswith="protected_subject.").exclude(
        action=Action.PROTECTED_SUBJECT_VIEWED
    )
    assert changes.count() == 1


def test_reviewer_sees_the_resolution_and_the_protected_flag(open_case, lead, journalist, reviewer, client):
    request = file_request(open_case, lead, subjects=[EMAIL, "2"], legal_basis="legal_process")
    actions.request_submit(actor=lead, request=request)
    client.force_login(reviewer)
    for name in ("request_detail", "request_decide"):
        page = client.get(reverse(f"investigations:{name}", args=[request.pk])).content.decode()
        assert "Touches protected subject" in page and "journalist" in page, name
        assert f"found by {EMAIL}" in page and "How the subjects were found" in page
        assert "Legal process" in page  # the legal bases the policy accepts
    client.force_login(lead)  # before a decision the team learns nothing of the registry or the resolution
    page = client.get(reverse("investigations:request_detail", args=[request.pk])).content.decode()
    assert "Touches" not in page and "journalist" not in page and "Protected-request policy" not in page
    assert "found by" not in page and "1 account" not in page and "shown to legal reviewers" in page


def test_admin_changes_the_registry_through_the_actions(admin_user, client):
    entry = actions.protected_subject_add(actor=admin_user, account_id=77, category="lawyer")
    client.force_login(admin_user)
    change = reverse("admin:investigations_protectedsubject_change", args=[entry.pk])
    response = client.post(change, {"category": "journalist", "source": "", "note": "", "reason": ""})
    assert response.status_code == 200 and "Give the reason for the change." in response.content.decode()
    response = client.post(change, {"category": "journalist", "source": "", "note": "", "reason": "Writes now."})
    assert response.status_code == 302
    (changed,) = events(Action.PROTECTED_SUBJECT_CHANGED)
    assert changed.details["after"]["category"] == "journalist" and changed.actor_id == admin_user.pk
    delete = reverse("admin:investigations_protectedsubject_delete", args=[entry.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert ProtectedSubject.objects.listed().filter(account_id=77).exists()


def test_the_team_does_not_learn_who_used_an_ip_before_approval(
    open_case, lead, member, press, reviewer, second_reviewer, senior_reviewer, client
):
    """Resolving an IP is itself a read of user data: until legal approves, the case team sees
    the accounts it named directly and not the ones the IP led to."""
    request = file_request(open_case, lead, subjects=[IP, "2"])
    actions.request_submit(actor=lead, request=request)
    url = reverse("investigations:request_detail", args=[request.pk])
    for person in (lead, member):
        client.force_login(person)
        page = client.get(url).content.decode()
        assert str(JOURNALIST) not in page and str(COLLEAGUE) not in page, person
        assert "an email, phone, IP or device reaches" in page
    client.force_login(reviewer)  # legal off the team sees whom the request reaches
    page = client.get(url).content.decode()
    assert str(JOURNALIST) in page and str(COLLEAGUE) in page
    request.refresh_from_db()
    for approver in (reviewer, senior_reviewer):
        if request.status == "submitted":
            actions.request_decide(actor=approver, request=request, outcome="approve")
            request.refresh_from_db()
    assert request.status == "approved"
    client.force_login(lead)  # approved: the grant's frozen scope names every account
    assert str(JOURNALIST) in client.get(url).content.decode()


def test_the_api_withholds_the_same_accounts_as_the_page(open_case, lead, press, reviewer):
    from tests.api.conftest import token_client

    request = file_request(open_case, lead, subjects=[IP, "2"])
    actions.request_submit(actor=lead, request=request)
    url = f"/api/v1/requests/{request.pk}/"
    team_view = token_client(lead).get(url).json()
    assert team_view["subjects"] == [2] and team_view["subjects_withheld"] is True
    assert team_view["is_protected"] is None
    listed = token_client(lead).get("/api/v1/requests/").json()
    assert [row["subjects"] for row in listed["results"]] == [[2]]  # not str(listed): 901 may be in a timestamp
    legal_view = token_client(reviewer).get(url).json()
    assert sorted(legal_view["subjects"]) == sorted([2, JOURNALIST, COLLEAGUE])
    assert legal_view["subjects_withheld"] is False and legal_view["is_protected"] is False


def test_a_reviewer_on_the_team_is_withheld_from_like_the_team(open_case, lead, press):
    """The list reads the team test from the chokepoint's row annotation: it must give the same answer."""
    from accounts.roles import Role
    from tests.api.conftest import token_client
    from tests.conftest import make_legacy_user

    both = make_legacy_user("investigator_and_reviewer", [Role.INVESTIGATOR, Role.LEGAL_REVIEWER])
    actions.case_add_member(actor=lead, case=open_case, user=both)
    request = file_request(open_case, lead, subjects=[IP, "2"])
    actions.request_submit(actor=lead, request=request)
    api = token_client(both)
    detail = api.get(f"/api/v1/requests/{request.pk}/").json()
    listed = api.get("/api/v1/requests/").json()["results"]
    # The fields, not str(body): 901 may well appear in a timestamp's microseconds.
    assert detail["subjects"] == [2] and detail["subjects_withheld"] is True and detail["is_protected"] is None
    assert [row["subjects"] for row in listed] == [[2]] and listed[0]["subjects_withheld"] is True


def test_the_api_request_list_costs_no_query_per_request_with_withheld_accounts(open_case, lead, press, reviewer):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.api.conftest import token_client

    api = token_client(reviewer)

    def listed_with(count: int) -> int:
        while DataPullRequest.objects.filter(case=open_case).count() < count:
            actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=[IP, "2"]))
        with CaptureQueriesContext(connection) as queries:
            body = api.get("/api/v1/requests/").json()
        assert len(body["results"]) == count
        assert all(str(JOURNALIST) in str(row["subjects"]) for row in body["results"])  # legal off the team
        return len(queries)

    assert listed_with(2) == listed_with(6)
