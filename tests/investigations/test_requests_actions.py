"""Data-pull requests through the actions: bad input, the state machine, lapsing, emails."""

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from investigations import actions, notify
from investigations.actions.oversight import alerts_scan
from investigations.errors import InvalidTransition
from investigations.models import DataPullRequest, Grant, RequestStatus

from .fixtures import file_request, open_case_for, window

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _refused(case, actor, field, **overrides):
    before = DataPullRequest.objects.count()
    with pytest.raises(ValidationError) as error:
        file_request(case, actor, **overrides)
    assert field in error.value.message_dict, error.value.message_dict
    assert DataPullRequest.objects.count() == before
    assert not AuditEvent.objects.filter(action="request.created").exists()
    return " ".join(error.value.message_dict[field])


@pytest.mark.parametrize(
    "overrides, field, words",
    [
        ({"subjects": ("1", "no_such_handle")}, "subjects", "no_such_handle"),
        ({"subjects": ("1", "1")}, "subjects", "more than once"),
        ({"subjects": ()}, "subjects", "at least one"),
        ({"categories": ()}, "categories", "at least one"),
        ({"categories": ("ip_logs", "messages")}, "categories", "messages"),
        ({"duration_hours": 7 * 24 + 1}, "duration_hours", "168"),
        ({"duration_hours": 0}, "duration_hours", "1"),
        ({"justification": "because"}, "justification", "at least 40"),
        ({"legal_basis": "other"}, "legal_basis_other", "Describe"),
        ({"legal_basis": "gut_feeling"}, "legal_basis", "valid choice"),
    ],
)
def test_bad_input_is_a_field_error_and_saves_nothing(open_case, lead, store, overrides, field, words):
    assert words in _refused(open_case, lead, field, **overrides)


def test_window_rules(open_case, lead, store):
    today = timezone.now().date()
    assert "start before" in _refused(
        open_case, lead, "window_start", window_start=today, window_end=today - timedelta(days=1)
    )
    assert "after today" in _refused(
        open_case, lead, "window_end", window_start=today, window_end=today + timedelta(days=1)
    )
    assert "366" in _refused(open_case, lead, "window_end", window_start=today - timedelta(days=366), window_end=today)


def test_handle_and_id_of_the_same_account_is_a_duplicate(open_case, lead, store, userdata_guard):
    from userdata.models import Account

    with userdata_guard.allow():  # the test itself looks up the handle to type
        handle = Account.objects.using("userdata").get(pk=1).handle
    assert "same account" in _refused(open_case, lead, "subjects", subjects=("1", f"@{handle}"))


def test_ten_thousand_subjects_refused_with_the_limit_without_a_lookup(open_case, lead, store):
    message = _refused(open_case, lead, "subjects", subjects=[str(n) for n in range(1, 10_001)])
    assert "At most 100 subjects" in message
    assert not AuditEvent.objects.filter(action="subject.lookup").exists()


def test_the_subject_lookup_is_audited_even_when_refused(open_case, lead, store):
    _refused(open_case, lead, "subjects", subjects=("1", "no_such_handle"))
    lookup = AuditEvent.objects.get(action="subject.lookup")
    assert lookup.details["identifiers"] == ["1", "no_such_handle"]
    assert lookup.case_reference == open_case.reference


def test_all_field_errors_at_once(open_case, lead, store):
    with pytest.raises(ValidationError) as error:
        file_request(open_case, lead, categories=(), justification="short", duration_hours=10_000)
    assert {"categories", "justification", "duration_hours"} <= set(error.value.message_dict)


def test_only_the_team_files(open_case, other_investigator, reviewer, store):
    for user in (other_investigator, reviewer):
        with pytest.raises(PermissionDenied):
            file_request(open_case, user)
    assert not DataPullRequest.objects.exists()


def test_submission_needs_an_approved_case(lead, store):
    case = actions.case_open(actor=lead, title="t", allegation="a", case_type="misconduct", purpose="p", team=[])
    draft = file_request(case, lead)  # a draft may be prepared while legal looks at the case
    with pytest.raises(InvalidTransition):
        actions.request_submit(actor=lead, request=draft)
    draft.refresh_from_db()
    assert draft.status == RequestStatus.DRAFT


def test_submit_edit_withdraw_rights(draft_request, lead, member, reviewer):
    with pytest.raises(PermissionDenied):
        actions.request_submit(actor=member, request=draft_request)
    with pytest.raises(PermissionDenied):
        actions.request_update(actor=member, request=draft_request, subjects=["3"])
    with pytest.raises(PermissionDenied):
        actions.request_withdraw(actor=member, request=draft_request)
    with pytest.raises(PermissionDenied):
        actions.request_withdraw(actor=reviewer, request=draft_request)
    draft_request.refresh_from_db()
    assert draft_request.status == RequestStatus.DRAFT and draft_request.subjects == [1, 2]


def test_lead_may_withdraw_a_members_draft(open_case, lead, member, store):
    draft = file_request(open_case, member)
    actions.request_withdraw(actor=lead, request=draft, reason="Not needed after all.")
    draft.refresh_from_db()
    assert draft.status == RequestStatus.WITHDRAWN
    assert AuditEvent.objects.filter(action="request.withdrawn", target_id=str(draft.pk)).exists()
    with pytest.raises(InvalidTransition):
        actions.request_submit(actor=member, request=draft)


def test_editing_a_draft_resolves_again_and_is_audited(draft_request, lead):
    updated = actions.request_update(
        actor=lead, request=draft_request, subjects=["3", "4", "5"], categories=["devices"], duration_hours=12
    )
    assert updated.subjects == [3, 4, 5] and updated.categories == ["devices"] and updated.duration_hours == 12
    event = AuditEvent.objects.get(action="request.updated")
    assert event.details["before"]["subjects"] == [1, 2]
    assert event.details["after"]["subjects"] == [3, 4, 5]


def test_editing_with_bad_input_changes_nothing(draft_request, lead):
    with pytest.raises(ValidationError):
        actions.request_update(actor=lead, request=draft_request, subjects=["3", "nobody_here"], categories=[])
    draft_request.refresh_from_db()
    assert draft_request.subjects == [1, 2] and draft_request.categories == ["ip_logs", "profile"]


def test_editing_a_submitted_request_is_refused(submitted_request, lead):
    with pytest.raises(InvalidTransition):
        actions.request_update(actor=lead, request=submitted_request, subjects=["3"])
    submitted_request.refresh_from_db()
    assert submitted_request.subjects == [1, 2]


def test_editing_an_approved_request_leaves_the_grant_unchanged(active_grant, lead):
    request = active_grant.request
    frozen = (active_grant.subjects, active_grant.categories, active_grant.window_start, active_grant.window_end)
    with pytest.raises(InvalidTransition):
        actions.request_update(actor=lead, request=request, subjects=["1", "2", "3"], categories=["location"])
    with pytest.raises(InvalidTransition):
        actions.request_withdraw(actor=lead, request=request)
    with pytest.raises(ValueError):
        active_grant.subjects = [1, 2, 3]
        active_grant.save()
    grant = Grant.objects.get(pk=active_grant.pk)
    assert (grant.subjects, grant.categories, grant.window_start, grant.window_end) == frozen
    request.refresh_from_db()
    assert request.status == RequestStatus.APPROVED and request.subjects == [1, 2]


def test_returned_request_can_be_edited_and_resubmitted_as_a_new_round(submitted_request, lead, reviewer):
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="return", reason="Narrow the window.")
    start, end = window(7)
    updated = actions.request_update(
        actor=lead, request=submitted_request, subjects=["1"], window_start=start, window_end=end
    )
    resubmitted = actions.request_submit(actor=lead, request=updated)
    assert resubmitted.status == RequestStatus.SUBMITTED and resubmitted.review_round == 2
    # the reviewer who returned it may decide the new round
    decision = actions.request_decide(actor=reviewer, request=resubmitted, outcome="approve")
    assert decision.review_round == 2
    assert Grant.objects.get(request=resubmitted).subjects == [1]


@pytest.mark.parametrize("outcome", ["reject", "return", "approve_narrowed"])
def test_reason_required_except_plain_approve(submitted_request, reviewer, outcome):
    with pytest.raises(ValidationError) as error:
        actions.request_decide(actor=reviewer, request=submitted_request, outcome=outcome, reason=" ")
    assert "reason" in error.value.message_dict
    submitted_request.refresh_from_db()
    assert submitted_request.status == RequestStatus.SUBMITTED and not submitted_request.decisions.exists()


def test_decided_requests_cannot_be_decided_again(submitted_request, reviewer, second_reviewer):
    actions.request_decide(actor=reviewer, request=submitted_request, outcome="reject", reason="Not proportionate.")
    with pytest.raises(InvalidTransition):
        actions.request_decide(actor=second_reviewer, request=submitted_request, outcome="approve")
    assert not Grant.objects.exists()


# --- lapsing -------------------------------------------------------------------------------


def test_overdue_requests_lapse_once_each(open_case, lead, store, settings):
    first = actions.request_submit(actor=lead, request=file_request(open_case, lead))
    second = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("3",)))
    later = timezone.now() + timedelta(hours=settings.CUSTOS["REQUEST_TTL_HOURS"] + 1)
    assert actions.lapse_overdue_requests(timezone.now()) == 0
    assert actions.lapse_overdue_requests(later) == 2
    assert actions.lapse_overdue_requests(later) == 0
    for request in (first, second):
        request.refresh_from_db()
        assert request.status == RequestStatus.LAPSED
    assert AuditEvent.objects.filter(action="request.lapsed").count() == 2


def test_ttl_is_configurable_and_lapsed_requests_cannot_be_decided(submitted_request, reviewer, settings):
    settings.CUSTOS = {**settings.CUSTOS, "REQUEST_TTL_HOURS": 1}
    soon = timezone.now() + timedelta(minutes=30)
    assert not actions.request_lapse(request=submitted_request, now=soon)
    assert actions.request_lapse(request=submitted_request, now=timezone.now() + timedelta(hours=2))
    with pytest.raises(InvalidTransition):
        actions.request_decide(actor=reviewer, request=submitted_request, outcome="approve")
    assert not Grant.objects.exists()


def test_drafts_never_lapse(draft_request):
    assert actions.lapse_overdue_requests(timezone.now() + timedelta(days=365)) == 0
    draft_request.refresh_from_db()
    assert draft_request.status == RequestStatus.DRAFT


# --- emails ----------------------------------------------------------------------------------


def test_reviewers_are_emailed_after_submission_commits(
    draft_request, lead, reviewer, senior_reviewer, django_capture_on_commit_callbacks, deliver_mail
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        actions.request_submit(actor=lead, request=draft_request)
    assert not mail.outbox  # nothing before commit
    assert notify.ring_delivery in callbacks  # the commit rings the worker
    deliver_mail()
    assert len(mail.outbox) == 1
    recipients = set(mail.outbox[0].to)
    assert {reviewer.email, senior_reviewer.email} <= recipients
    assert lead.email not in recipients
    assert "awaits a decision" in mail.outbox[0].subject


def test_no_email_when_submission_fails(
    open_case, lead, reviewer, store, django_capture_on_commit_callbacks, deliver_mail
):
    draft = file_request(open_case, lead)
    actions.request_submit(actor=lead, request=draft)
    deliver_mail()
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(InvalidTransition):
        actions.request_submit(actor=lead, request=draft)
    assert not deliver_mail()


def test_requester_is_emailed_the_decision(
    submitted_request, lead, reviewer, django_capture_on_commit_callbacks, deliver_mail
):
    with django_capture_on_commit_callbacks(execute=True):
        actions.request_decide(actor=reviewer, request=submitted_request, outcome="reject", reason="Disproportionate.")
    [message] = [message for message in deliver_mail() if lead.email in message.to]
    assert message.to == [lead.email]
    assert "rejected" in message.subject
    assert "Disproportionate." in message.body


def test_closed_case_refuses_filing(lead, reviewer, store):
    case = open_case_for(lead, reviewer)
    case.status = "closed"  # closing belongs to the case actions; only the status matters here
    case.save(update_fields=["status"])
    with pytest.raises(InvalidTransition):
        file_request(case, lead)
    assert not DataPullRequest.objects.exists()


def test_protected_submission_alerts_oversight_by_email(
    open_case, lead, reviewer, auditor, admin_user, store, settings, django_capture_on_commit_callbacks
):
    settings.OVERSIGHT_EMAILS = ["oversight@example.org"]
    actions.protected_subject_add(actor=admin_user, account_id=2, category="lawyer")
    with django_capture_on_commit_callbacks(execute=True):
        actions.request_submit(actor=lead, request=file_request(open_case, lead, legal_basis="legal_process"))
    assert not [message for message in mail.outbox if "oversight" in message.subject]  # the scan alerts
    with django_capture_on_commit_callbacks(execute=True):
        alerts_scan()
    oversight = [message for message in mail.outbox if "oversight" in message.subject]
    assert len(oversight) == 1
    assert set(oversight[0].to) == {"oversight@example.org", auditor.email}
    assert "lawyer" in oversight[0].body and "Protected request submitted" in oversight[0].subject
