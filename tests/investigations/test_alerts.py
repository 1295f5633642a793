"""Oversight alerts raised from the audit trail, by real sequences of actions, and acknowledging them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

import audit
from accounts.models import User
from accounts.roles import Role
from audit.events import Action
from audit.models import AuditEvent
from custos_testing.worker import purge_broker, sent_on_the_broker
from investigations import actions, enqueue
from investigations.actions import oversight
from investigations.actions.oversight import alert_acknowledge, alerts_scan, is_working_time
from investigations.errors import InvalidTransition, QueryDenied
from investigations.models import Alert, AlertKind, CaseMember, OversightCursor
from investigations.tasks import scan_oversight
from tests.conftest import make_legacy_user, make_user

from .fixtures import file_request, open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

ALWAYS_WORKING = {"WORKING_DAYS": (0, 1, 2, 3, 4, 5, 6), "WORKING_HOURS": ("00:00", "23:59:59.999999")}


@pytest.fixture(autouse=True)
def working_hours(settings):
    """Queries count as in working hours unless a test says otherwise (tests run at any hour)."""
    settings.CUSTOS = {**settings.CUSTOS, "OVERSIGHT": {**settings.CUSTOS["OVERSIGHT"], **ALWAYS_WORKING}}


def set_rules(settings, **rules) -> None:
    settings.CUSTOS = {**settings.CUSTOS, "OVERSIGHT": {**settings.CUSTOS["OVERSIGHT"], **rules}}


def alerts(kind: str) -> list[Alert]:
    return list(Alert.objects.filter(kind=kind).order_by("event_seq"))


def deny(user, grant, times: int, category: str = "location") -> None:
    for _ in range(times):
        with pytest.raises(QueryDenied):
            actions.query_submit(actor=user, grant=grant, category=category)


# --- protected requests ------------------------------------------------------------------


def test_protected_submission_raises_an_audited_emailed_alert(
    protected_request, lead, auditor, settings, django_capture_on_commit_callbacks
):
    settings.OVERSIGHT_EMAILS = ["oversight@example.org"]
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        alerts_scan()
    [alert] = alerts(AlertKind.PROTECTED_REQUEST_SUBMITTED)
    assert (alert.request, alert.case, alert.user, alert.severity) == (
        protected_request,
        protected_request.case,
        lead,
        "warning",
    )
    assert alert.details["protected"] == ["journalist"]
    submitted = AuditEvent.objects.get(action=Action.REQUEST_SUBMITTED, target_id=str(protected_request.pk))
    assert alert.event_seq == submitted.seq
    raised = AuditEvent.objects.get(action=Action.ALERT_RAISED, target_id=str(alert.pk))
    assert raised.details == {"kind": "protected_request_submitted", "severity": "warning", "event_seq": submitted.seq}
    [message] = [m for m in mail.outbox if "oversight" in m.subject]
    assert set(message.to) == {"oversight@example.org", auditor.email}
    assert f"/oversight/alerts/{alert.pk}/" in message.body
    alert.refresh_from_db()
    assert alert.emailed_at is not None


def test_an_ordinary_request_raises_no_alert(submitted_request):
    alerts_scan()
    assert not Alert.objects.exists()


@pytest.mark.parametrize(("outcome", "severity"), [("approve", "critical"), ("reject", "info")])
def test_protected_decision_raises_an_alert(protected_request, senior_reviewer, outcome, severity):
    actions.request_decide(actor=senior_reviewer, request=protected_request, outcome=outcome, reason="Checked.")
    alerts_scan()
    [alert] = alerts(AlertKind.PROTECTED_REQUEST_DECIDED)
    assert (alert.user, alert.request, alert.severity) == (senior_reviewer, protected_request, severity)
    assert alert.details["outcome"] == outcome


# --- repeated denials --------------------------------------------------------------------


def test_three_denied_queries_raise_one_alert(active_grant, lead):
    deny(lead, active_grant, 2)
    alerts_scan()
    assert not alerts(AlertKind.REPEATED_DENIALS)  # two are not enough
    deny(lead, active_grant, 2)
    alerts_scan()
    [alert] = alerts(AlertKind.REPEATED_DENIALS)
    assert (alert.user, alert.grant, alert.case) == (lead, active_grant, active_grant.case)
    assert alert.details["denials"] == 3 and alert.details["reasons"] == {"out_of_scope_category": 3}
    third = AuditEvent.objects.filter(action=Action.QUERY_DENIED).order_by("seq")[2]
    assert alert.event_seq == third.seq  # raised by the third, the fourth adds no second alert


def test_denials_by_different_users_are_not_added_up(active_grant, lead, member):
    deny(lead, active_grant, 2)
    deny(member, active_grant, 2, category="ip_logs")  # member is on the team but no grantee
    alerts_scan()
    assert not alerts(AlertKind.REPEATED_DENIALS)


def test_denials_outside_the_window_do_not_count(active_grant, lead, settings):
    set_rules(settings, DENIAL_WINDOW_MINUTES=0)
    deny(lead, active_grant, 3)
    alerts_scan()
    assert not alerts(AlertKind.REPEATED_DENIALS)


def test_threshold_is_configurable(active_grant, lead, settings):
    set_rules(settings, REPEATED_DENIALS=1)
    deny(lead, active_grant, 1)
    alerts_scan()
    assert len(alerts(AlertKind.REPEATED_DENIALS)) == 1


# --- off-hours ---------------------------------------------------------------------------


def test_working_time_uses_the_configured_zone_days_and_hours(settings):
    set_rules(settings, TIME_ZONE="Europe/Berlin", WORKING_HOURS=("08:00", "19:00"), WORKING_DAYS=(0, 1, 2, 3, 4))
    monday = datetime(2026, 3, 2, tzinfo=UTC)  # Berlin is UTC+1 in March
    assert not is_working_time(monday.replace(hour=6, minute=59))  # 07:59 in Berlin
    assert is_working_time(monday.replace(hour=7))  # 08:00
    assert is_working_time(monday.replace(hour=17, minute=59))  # 18:59
    assert not is_working_time(monday.replace(hour=18))  # 19:00
    assert not is_working_time(monday + timedelta(days=5, hours=10))  # Saturday 11:00


def test_a_query_outside_working_hours_raises_one_alert_per_stretch(wide_grant, lead, settings):
    set_rules(settings, WORKING_DAYS=())  # every day is a day off
    first = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs")
    actions.query_execute_now(actor=lead, grant=wide_grant, category="location")
    alerts_scan()
    [alert] = alerts(AlertKind.OFF_HOURS_QUERY)
    assert (alert.user, alert.query, alert.grant, alert.severity) == (lead, first, wide_grant, "info")
    assert alert.event_seq == AuditEvent.objects.get(action=Action.QUERY_REQUESTED, target_id=str(first.pk)).seq


def test_a_query_in_working_hours_raises_nothing(wide_grant, lead):
    actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs")
    alerts_scan()
    assert not Alert.objects.exists()


# --- the same subject in unrelated cases; re-filing after rejection --------------------------


@pytest.fixture
def second_case(other_investigator, reviewer):
    return open_case_for(other_investigator, reviewer, title="Expense fraud")


def test_subject_named_in_another_case_raises_an_alert(submitted_request, second_case, other_investigator):
    request = file_request(second_case, other_investigator, subjects=("2", "7"))
    actions.request_submit(actor=other_investigator, request=request)
    alerts_scan()
    [alert] = alerts(AlertKind.SUBJECT_IN_UNRELATED_CASES)
    assert (alert.request, alert.case, alert.user) == (request, second_case, other_investigator)
    assert alert.details == {
        "accounts": [2],
        "other_cases": [submitted_request.case.reference],
        "other_requests": [submitted_request.pk],
    }


def test_another_request_on_the_same_case_is_not_unrelated(submitted_request, open_case, member):
    actions.request_submit(actor=member, request=file_request(open_case, member, subjects=("2",)))
    alerts_scan()
    assert not alerts(AlertKind.SUBJECT_IN_UNRELATED_CASES)


def test_refiling_rejected_subjects_raises_an_alert(submitted_request, open_case, lead, second_reviewer):
    actions.request_decide(actor=second_reviewer, request=submitted_request, outcome="reject", reason="Not needed.")
    refiled = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("2", "3")))
    alerts_scan()
    [alert] = alerts(AlertKind.REFILED_AFTER_REJECTION)
    assert (alert.request, alert.user) == (refiled, lead)
    assert alert.details == {"accounts": [2], "rejected_requests": [submitted_request.pk]}


def test_refiling_on_another_case_by_the_same_requester_raises_an_alert(
    submitted_request, lead, reviewer, second_reviewer
):
    actions.request_decide(actor=second_reviewer, request=submitted_request, outcome="reject", reason="Not needed.")
    elsewhere = open_case_for(lead, reviewer, title="Another matter")
    refiled = actions.request_submit(actor=lead, request=file_request(elsewhere, lead, subjects=("1",)))
    alerts_scan()
    [alert] = alerts(AlertKind.REFILED_AFTER_REJECTION)
    assert alert.request == refiled and alert.details["accounts"] == [1]
    assert len(alerts(AlertKind.SUBJECT_IN_UNRELATED_CASES)) == 1  # and it is another case


def test_a_rejection_after_the_new_submission_is_not_a_refiling(submitted_request, open_case, lead, second_reviewer):
    actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("1",)))
    actions.request_decide(actor=second_reviewer, request=submitted_request, outcome="reject", reason="Not needed.")
    alerts_scan()
    assert not alerts(AlertKind.REFILED_AFTER_REJECTION)


# --- tripwire (the gateway's event is recorded by hand on this branch) ------------------------


def test_tripwire_event_raises_a_critical_alert(succeeded_query, wide_grant):
    with transaction.atomic():
        audit.record(
            action=Action.QUERY_TRIPWIRE,
            target=succeeded_query,
            case_reference=wide_grant.case.reference,
            details={"dropped_rows": 4, "protected_accounts": [9], "category": "ip_logs", "grant_id": wide_grant.pk},
        )
    alerts_scan()
    [alert] = alerts(AlertKind.TRIPWIRE)
    assert (alert.severity, alert.query, alert.grant, alert.user) == (
        "critical",
        succeeded_query,
        wide_grant,
        succeeded_query.user,
    )
    assert alert.details == {"dropped_rows": 4, "protected_accounts": [9], "other_accounts": 0, "category": "ip_logs"}


# --- the scan: idempotent, fails closed, enqueued on commit ----------------------------------


def test_scanning_twice_raises_nothing_twice(protected_request):
    first = alerts_scan()
    second = alerts_scan()
    assert len(first.alerts) == 1 and second.alerts == []
    assert Alert.objects.count() == 1
    assert OversightCursor.objects.get().last_seq == second.last_seq == AuditEvent.objects.order_by("-seq")[0].seq


def test_small_batches_reach_the_end(protected_request):
    scan = alerts_scan(batch_size=2)
    assert len(scan.alerts) == 1
    assert OversightCursor.objects.get().last_seq == scan.last_seq
    assert not AuditEvent.objects.filter(seq__gt=scan.last_seq).exclude(action=Action.ALERT_RAISED).exists()


def test_a_failing_scan_leaves_the_cursor_and_alerts_unmoved(protected_request, monkeypatch):
    alerts_scan()
    actions.request_decide(
        actor=make_user("senior_two", [Role.LEGAL_REVIEWER, Role.SENIOR_LEGAL_REVIEWER]),
        request=protected_request,
        outcome="reject",
        reason="No.",
    )
    before = OversightCursor.objects.get().last_seq
    events_before = AuditEvent.objects.count()

    def broken(event):
        raise RuntimeError("detector failed")

    monkeypatch.setitem(oversight.DETECTORS, Action.DECISION_RECORDED, broken)
    with pytest.raises(RuntimeError):
        alerts_scan()
    assert OversightCursor.objects.get().last_seq == before
    assert Alert.objects.count() == 1 and AuditEvent.objects.count() == events_before
    monkeypatch.undo()
    alerts_scan()
    assert len(alerts(AlertKind.PROTECTED_REQUEST_DECIDED)) == 1


def test_the_scan_is_enqueued_after_the_actions_commit(
    draft_request, lead, django_capture_on_commit_callbacks, monkeypatch, settings
):
    sent = []
    monkeypatch.setattr(enqueue, "send", lambda task, *args: sent.append((task, args)))
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        actions.request_submit(actor=lead, request=draft_request)
    assert sent == []  # nothing before commit
    for callback in callbacks:
        callback()
    # the scan, and the delivery of the reviewers' e-mail
    assert sorted(sent) == [
        (enqueue.DELIVER_MAIL, (settings.CUSTOS["MAIL_DOORBELL_MS"],)),
        (enqueue.SCAN_OVERSIGHT, (oversight.rules()["DOORBELL_MS"],)),
    ]


def test_the_task_runs_the_scan(protected_request):
    result = scan_oversight()
    assert result["alerts"] == 1 and result["seq"] == OversightCursor.objects.get().last_seq
    assert Alert.objects.filter(kind=AlertKind.PROTECTED_REQUEST_SUBMITTED).count() == 1


# --- the doorbell: one publish per quiet window, and the rung scan runs again after it -----


def scans_on_the_broker() -> list[tuple[list, bool]]:
    """The scan's messages waiting on the configured broker, taken off it: (args, has an ETA)."""
    return sent_on_the_broker(enqueue.SCAN_OVERSIGHT)


def denied_burst(grant, actor, capture, times: int) -> None:
    """``times`` denied query attempts, each committed on its own (each rings the scan)."""
    for _ in range(times):
        with capture(execute=True), pytest.raises(QueryDenied):
            actions.query_submit(actor=actor, grant=grant, category="location")


def test_a_burst_of_commits_publishes_one_ring(active_grant, lead, settings, django_capture_on_commit_callbacks):
    set_rules(settings, DOORBELL_MS=60_000)  # far longer than the burst takes, however slow the machine
    purge_broker()
    denied_burst(active_grant, lead, django_capture_on_commit_callbacks, 5)
    assert scans_on_the_broker() == [([60_000], False)]


def test_the_doorbell_rings_again_once_its_window_has_passed(
    active_grant, lead, settings, django_capture_on_commit_callbacks
):
    set_rules(settings, DOORBELL_MS=50)
    purge_broker()
    denied_burst(active_grant, lead, django_capture_on_commit_callbacks, 1)
    time.sleep(0.1)  # past the window (an order of events, not a speed)
    denied_burst(active_grant, lead, django_capture_on_commit_callbacks, 1)
    assert scans_on_the_broker() == [([50], False), ([50], False)]


@pytest.mark.redis
def test_a_window_claimed_by_another_process_keeps_this_one_quiet(
    active_grant, lead, settings, django_capture_on_commit_callbacks
):
    set_rules(settings, DOORBELL_MS=60_000)
    purge_broker()
    denied_burst(active_grant, lead, django_capture_on_commit_callbacks, 1)
    enqueue._quiet_until.clear()  # as a process that has not rung sees it: only Redis knows
    denied_burst(active_grant, lead, django_capture_on_commit_callbacks, 2)
    assert scans_on_the_broker() == [([60_000], False)]


def test_the_rung_scan_runs_again_after_the_window_and_beats_scan_does_not(protected_request):
    purge_broker()
    scan_oversight(1500)
    assert scans_on_the_broker() == [([], True)]
    scan_oversight()
    assert scans_on_the_broker() == []


# --- acknowledging -----------------------------------------------------------------------


@pytest.fixture
def alert(protected_request):
    alerts_scan()
    return Alert.objects.get()


def test_acknowledging_is_audited(alert, auditor):
    alert_acknowledge(actor=auditor, alert=alert, note="Spoke to the requester; the case is genuine.")
    alert.refresh_from_db()
    assert alert.acknowledged_by == auditor and alert.acknowledged_at is not None
    event = AuditEvent.objects.get(action=Action.ALERT_ACKNOWLEDGED)
    assert (event.actor_id, event.target_id, event.case_reference) == (auditor.pk, str(alert.pk), alert.case.reference)
    assert event.details["note"] == "Spoke to the requester; the case is genuine."
    with pytest.raises(InvalidTransition):
        alert_acknowledge(actor=make_user("auditor_two", [Role.AUDITOR]), alert=alert, note="Again.")
    assert AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED).count() == 1


def test_acknowledging_needs_a_note(alert, auditor):
    with pytest.raises(ValidationError) as error:
        alert_acknowledge(actor=auditor, alert=alert, note="   ")
    assert "note" in error.value.message_dict
    alert.refresh_from_db()
    assert not alert.is_acknowledged and not AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED).exists()


@pytest.mark.parametrize("persona", ["lead", "reviewer", "senior_reviewer", "admin_user", "superuser", "outsider"])
def test_only_auditors_acknowledge(alert, persona, request):
    with pytest.raises(PermissionDenied):
        alert_acknowledge(actor=request.getfixturevalue(persona), alert=alert, note="Looks fine.")
    alert.refresh_from_db()
    assert not alert.is_acknowledged


def test_an_auditor_on_the_case_team_may_not_acknowledge(alert, lead):
    insider = make_legacy_user("auditor_on_team", [Role.AUDITOR, Role.INVESTIGATOR])
    CaseMember.objects.create(case=alert.case, user=insider, added_by=lead)
    with pytest.raises(PermissionDenied, match="case's team"):
        alert_acknowledge(actor=insider, alert=alert, note="Nothing to see.")


def test_an_auditor_may_not_acknowledge_an_alert_about_themselves(alert, lead):
    lead.groups.add(Group.objects.get(name=Role.AUDITOR))
    lead = User.objects.get(pk=lead.pk)  # as the next request loads them: roles are read once per user object
    with pytest.raises(PermissionDenied, match="your own action"):
        alert_acknowledge(actor=lead, alert=alert, note="Nothing to see.")


# --- administrators ----------------------------------------------------------------------


def test_granting_staff_or_superuser_status_raises_an_alert(lead, admin_user, client):
    """Through the admin (staff) and through createsuperuser (superuser): the scan reads the ledger."""
    from django.contrib.auth.models import Permission
    from django.core.management import call_command

    from accounts.actions import user_set_privileges

    admin_user.user_permissions.add(*Permission.objects.filter(codename__in=["view_user", "change_user"]))
    client.force_login(admin_user)
    form = {
        "username": lead.username,
        "email": lead.email,
        "is_active": "on",
        "is_staff": "on",
        "groups": list(lead.groups.values_list("pk", flat=True)),
        "date_joined_0": lead.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": lead.date_joined.strftime("%H:%M:%S"),
    }
    assert client.post(f"/admin/accounts/user/{lead.pk}/change/", form).status_code == 302
    call_command("createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.org")
    user_set_privileges(actor=admin_user, user=lead, is_staff=False)  # withdrawing raises nothing
    alerts_scan()
    staff, superuser = alerts(AlertKind.PRIVILEGE_GRANTED)
    assert (staff.severity, staff.user_id, staff.details) == (
        "warning",
        lead.pk,
        {"granted": ["is_staff"], "username": "lead"},
    )
    assert staff.summary == "admin granted staff status to lead."
    assert superuser.severity == "critical" and superuser.details["granted"] == ["is_superuser"]
    assert superuser.summary == "the system granted superuser status to boss."
    raised = AuditEvent.objects.filter(action=Action.ALERT_RAISED, details__kind=AlertKind.PRIVILEGE_GRANTED)
    assert raised.count() == 2
