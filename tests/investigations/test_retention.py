"""Retention and legal hold: a closed case's evidence files are purged after the retention period,
one ledger event per item, the records kept with their hashes; a legal hold, placed and lifted by an
independent legal reviewer with a reason, prevents the purge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.urls import reverse
from django.utils import timezone

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.errors import InvalidTransition
from investigations.models import Case, Evidence

from ..conftest import make_legacy_user
from .evidence_helpers import PNG, TEXT, stored_files, upload
from .fixtures import open_case_for

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def closed_with_evidence(lead, member, reviewer, *, days_ago: int) -> tuple[Case, list[Evidence]]:
    """A case (approved by ``reviewer``) with a document, a second version of it and a picture,
    closed ``days_ago`` days ago."""
    case = open_case_for(lead, reviewer, team=[member])
    first = actions.evidence_upload(actor=lead, case=case, upload=upload(TEXT, "notes.txt", "text/plain"))
    second = actions.evidence_upload(
        actor=member, case=case, upload=upload(TEXT + b"More.\n", "notes.txt", "text/plain"), supersedes=first
    )
    picture = actions.evidence_upload(actor=member, case=case, upload=upload(PNG, "desk.png", "image/png"))
    actions.case_close(actor=lead, case=case, summary="Done.")
    # The clock is the one thing a test cannot wait for: the closure is moved back in time.
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - timedelta(days=days_ago))
    return case, [first, second, picture]


def purged_events(case: Case) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=Action.EVIDENCE_PURGED, case_reference=case.reference).order_by("seq"))


def test_after_retention_the_files_go_and_the_records_stay_with_one_event_each(
    lead, member, reviewer, evidence_store, settings, django_capture_on_commit_callbacks
):
    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    case, items = closed_with_evidence(lead, member, reviewer, days_ago=31)
    assert len(stored_files(evidence_store)) == 3
    with django_capture_on_commit_callbacks(execute=True):  # the files go after commit
        assert actions.evidence_purge_due() == 3
    assert stored_files(evidence_store) == []
    for item in items:
        kept = Evidence.objects.get(pk=item.pk)
        assert kept.is_purged and kept.sha256 == item.sha256 and kept.size == item.size
    events = purged_events(case)
    assert sorted(int(event.target_id) for event in events) == sorted(item.pk for item in items)
    assert {event.details["sha256"] for event in events} == {item.sha256 for item in items}
    assert all(event.details["retention_days"] == 30 and event.actor is None for event in events)
    assert actions.evidence_purge_due() == 0 and len(purged_events(case)) == 3  # once only
    with pytest.raises(InvalidTransition, match="purged"):
        actions.evidence_download(actor=lead, evidence=Evidence.objects.get(pk=items[0].pk))
    # The custody check does not take a purged file for a missing one.
    assert actions.evidence_verify_due().checked == 0
    assert not AuditEvent.objects.filter(action=Action.EVIDENCE_INTEGRITY_FAILED).exists()


def test_nothing_is_purged_before_the_retention_period_ends(lead, member, reviewer, evidence_store, settings):
    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    case, _ = closed_with_evidence(lead, member, reviewer, days_ago=29)
    open_case = open_case_for(lead, reviewer, team=[member])
    actions.evidence_upload(actor=lead, case=open_case, upload=upload(TEXT, "open.txt", "text/plain"))
    assert actions.evidence_purge_due() == 0
    assert len(stored_files(evidence_store)) == 4 and not purged_events(case)


def test_a_legal_hold_prevents_the_purge_until_lifted(
    lead, member, reviewer, second_reviewer, evidence_store, settings, django_capture_on_commit_callbacks
):
    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    case, items = closed_with_evidence(lead, member, reviewer, days_ago=400)
    held = actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation by the former employee.")
    assert held.legal_hold and held.legal_hold_by == reviewer
    placed = AuditEvent.objects.get(action=Action.CASE_LEGAL_HOLD_SET)
    assert placed.actor == reviewer and placed.details["reason"] == "Litigation by the former employee."
    assert actions.evidence_purge_due() == 0 and len(stored_files(evidence_store)) == 3
    with pytest.raises(InvalidTransition, match="already under legal hold"):
        actions.case_legal_hold_set(actor=reviewer, case=case, reason="Again.")
    actions.case_legal_hold_lift(actor=reviewer, case=case, reason="The claim was settled.")
    actions.case_legal_hold_lift(actor=second_reviewer, case=case, reason="The claim was settled, checked.")
    lifted = AuditEvent.objects.get(action=Action.CASE_LEGAL_HOLD_LIFTED)
    assert lifted.details["reason"] == "The claim was settled, checked." and lifted.details["placed_by"] == "reviewer"
    with django_capture_on_commit_callbacks(execute=True):  # the files go after commit
        assert actions.evidence_purge_due() == len(items)
    assert stored_files(evidence_store) == []
    with pytest.raises(InvalidTransition, match="not under legal hold"):
        actions.case_legal_hold_lift(actor=reviewer, case=case, reason="Twice.")


def test_only_an_independent_legal_reviewer_places_or_lifts_a_hold(
    lead, member, reviewer, senior_reviewer, auditor, admin_user, superuser, evidence_store
):
    case, _ = closed_with_evidence(lead, member, reviewer, days_ago=1)
    for teammate in (lead, member):  # they see the case: refused, and the refusal is recorded
        before = AuditEvent.objects.filter(action=Action.ACCESS_DENIED).count()
        with pytest.raises(PermissionDenied, match="legal reviewer independent"):
            actions.case_legal_hold_set(actor=teammate, case=case, reason="Keep it.")
        assert AuditEvent.objects.filter(action=Action.ACCESS_DENIED).count() == before + 1
    for stranger in (senior_reviewer, auditor, admin_user, superuser):  # they do not see the case
        with pytest.raises(Http404):
            actions.case_legal_hold_set(actor=stranger, case=case, reason="Keep it.")
    legacy = make_legacy_user("dual", ["investigator", "legal_reviewer"])
    theirs = open_case_for(lead, reviewer, team=[legacy])
    with pytest.raises(PermissionDenied):  # a legal role, but on the team
        actions.case_legal_hold_set(actor=legacy, case=theirs, reason="Keep it.")
    with pytest.raises(ValidationError) as refused:
        actions.case_legal_hold_set(actor=reviewer, case=case, reason="  ")
    assert "reason" in refused.value.message_dict
    assert not Case.objects.filter(legal_hold=True).exists()
    assert not AuditEvent.objects.filter(action=Action.CASE_LEGAL_HOLD_SET).exists()


def test_a_hold_placed_while_the_case_is_open_outlives_its_closure(lead, member, reviewer, evidence_store, settings):
    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 0}
    case = open_case_for(lead, reviewer, team=[member])
    actions.evidence_upload(actor=lead, case=case, upload=upload(TEXT, "notes.txt", "text/plain"))
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="A regulator asked us to keep everything.")
    actions.case_close(actor=lead, case=Case.objects.get(pk=case.pk), summary="Done.")
    assert actions.evidence_purge_due() == 0 and len(stored_files(evidence_store)) == 1


def test_the_hold_through_the_pages_and_the_api(client, lead, member, reviewer, second_reviewer, evidence_store):
    from django.urls import reverse

    from tests.api.conftest import token_client

    case, _ = closed_with_evidence(lead, member, reviewer, days_ago=1)
    url = reverse("investigations:case_legal_hold", args=[case.pk])
    client.force_login(reviewer)
    assert "Place legal hold" in client.get(reverse("investigations:case_detail", args=[case.pk])).content.decode()
    refused = client.post(url, {"action": "place", "reason": ""})
    assert refused.status_code == 200 and "reason" in refused.context["form"].errors
    assert not Case.objects.get(pk=case.pk).legal_hold
    assert client.post(url, {"action": "place", "reason": "Litigation expected."}).status_code == 302
    assert client.post(url, {"action": "place", "reason": "Litigation expected."}).status_code == 409  # a second submit
    client.force_login(member)
    page = client.get(reverse("investigations:case_detail", args=[case.pk])).content.decode()
    assert "Litigation expected." in page and "Lift legal hold" not in page
    api = token_client(reviewer)
    endpoint = f"/api/v1/cases/{case.pk}/legal-hold/"
    assert api.post(endpoint, {"hold": True, "reason": "Again."}, format="json").status_code == 409
    assert "reason" in api.post(endpoint, {"hold": False}, format="json").json()
    proposed = api.post(endpoint, {"hold": False, "reason": "Settled."}, format="json")
    assert proposed.status_code == 200 and proposed.json()["legal_hold"] is True
    assert proposed.json()["lift_proposed_by"]["username"] == "reviewer"
    assert api.post(endpoint, {"hold": False, "reason": "Settled!"}, format="json").status_code == 403
    client.force_login(second_reviewer)
    page = client.get(url).content.decode()
    assert "Confirm lifting the legal hold" in page and "Settled." in page
    assert client.post(url, {"action": "lift", "reason": "Checked the settlement."}).status_code == 302
    assert not Case.objects.get(pk=case.pk).legal_hold
    assert token_client(member).post(endpoint, {"hold": True, "reason": "Mine."}, format="json").status_code == 403
    assert list(
        AuditEvent.objects.filter(action__in=[Action.CASE_LEGAL_HOLD_SET, Action.CASE_LEGAL_HOLD_LIFTED])
        .order_by("seq")
        .values_list("action", flat=True)
    ) == [Action.CASE_LEGAL_HOLD_SET, Action.CASE_LEGAL_HOLD_LIFTED]
    assert AuditEvent.objects.filter(action=Action.CASE_LEGAL_HOLD_LIFT_PROPOSED).count() == 1


def test_the_timeline_and_the_case_report_tell_the_hold_and_the_purge(
    lead, member, reviewer, second_reviewer, evidence_store, settings, django_capture_on_commit_callbacks
):
    from investigations import timeline

    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    case, items = closed_with_evidence(lead, member, reviewer, days_ago=31)
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation expected.")
    actions.case_legal_hold_lift(actor=reviewer, case=case, reason="Settled.")
    actions.case_legal_hold_lift(actor=second_reviewer, case=case, reason="Settled, checked.")
    with django_capture_on_commit_callbacks(execute=True):
        actions.evidence_purge_due()
    sentences = [timeline.entry(event).sentence for event in timeline.case_events(case, viewer=member)]
    assert "reviewer placed the case under legal hold." in sentences
    assert "reviewer proposed lifting the legal hold." in sentences
    assert "second_reviewer lifted the legal hold (proposed by reviewer)." in sentences
    assert f"The file of evidence #{items[0].pk} was purged after the retention period (record and hash kept)." in (
        sentences
    )
    report = actions.case_report_produce(actor=member, case=Case.objects.get(pk=case.pk))  # the team, after closure
    assert report.html.count("after retention") == len(items)
    assert all(item.sha256 in report.html for item in items)


# --- two legal reviewers to lift a hold (red-team finding 5) ---------------------------------


def test_one_legal_reviewer_alone_cannot_lift_a_hold_before_the_purge(
    lead, member, reviewer, second_reviewer, evidence_store, settings, django_capture_on_commit_callbacks
):
    """The insider's attack: a legal reviewer lifts a hold just before the purge runs, and the
    evidence under hold is gone. Lifting takes a second, different legal reviewer's confirmation;
    until then the hold is in force and the purge leaves the files alone."""
    from investigations.models import Alert, AlertKind, AlertSeverity

    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    case, items = closed_with_evidence(lead, member, reviewer, days_ago=400)
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation by the former employee.")
    proposed = actions.case_legal_hold_lift(actor=reviewer, case=case, reason="The claim was settled.")
    assert proposed.legal_hold and proposed.legal_hold_lift_by == reviewer
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.evidence_purge_due() == 0
    assert len(stored_files(evidence_store)) == 3
    event = AuditEvent.objects.get(action=Action.CASE_LEGAL_HOLD_LIFT_PROPOSED)
    assert event.actor == reviewer and event.details["reason"] == "The claim was settled."
    assert not AuditEvent.objects.filter(action=Action.CASE_LEGAL_HOLD_LIFTED).exists()
    alert = Alert.objects.get(kind=AlertKind.LEGAL_HOLD_LIFT_PROPOSED)
    assert alert.severity == AlertSeverity.CRITICAL and alert.case_id == case.pk
    # the proposer cannot confirm their own proposal, however often they ask
    with pytest.raises(PermissionDenied, match="second legal reviewer"):
        actions.case_legal_hold_lift(actor=reviewer, case=case, reason="Really settled.")
    assert Case.objects.get(pk=case.pk).legal_hold
    # a second, independent legal reviewer confirms: now it is lifted, and the purge takes the files
    lifted = actions.case_legal_hold_lift(actor=second_reviewer, case=case, reason="Checked the settlement.")
    assert not lifted.legal_hold and lifted.legal_hold_lift_by is None
    done = AuditEvent.objects.get(action=Action.CASE_LEGAL_HOLD_LIFTED)
    assert done.actor == second_reviewer and done.details["proposed_by"] == "reviewer"
    assert done.details["proposal_reason"] == "The claim was settled."
    assert done.details["reason"] == "Checked the settlement."
    assert Alert.objects.filter(kind=AlertKind.LEGAL_HOLD_LIFTED, severity=AlertSeverity.CRITICAL).count() == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert actions.evidence_purge_due() == len(items)


def test_the_confirmation_needs_an_independent_legal_reviewer(lead, member, reviewer, evidence_store):
    case, _ = closed_with_evidence(lead, member, reviewer, days_ago=1)
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation expected.")
    actions.case_legal_hold_lift(actor=reviewer, case=case, reason="Settled.")
    for outsider in (lead, member):
        with pytest.raises((PermissionDenied, Http404)):
            actions.case_legal_hold_lift(actor=outsider, case=case, reason="Confirmed.")
    assert Case.objects.get(pk=case.pk).legal_hold


def test_a_stale_lift_proposal_lapses_and_is_never_confirmed_later(
    lead, member, reviewer, second_reviewer, evidence_store, settings, client
):
    """A proposal left waiting must not be confirmed months later, when nobody remembers why:
    past HOLD_LIFT_PROPOSAL_HOURS it has lapsed, and a second reviewer's lift is a new proposal."""
    settings.EVIDENCE = {**settings.EVIDENCE, "HOLD_LIFT_PROPOSAL_HOURS": 72}
    case, _ = closed_with_evidence(lead, member, reviewer, days_ago=1)
    actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation expected.")
    actions.case_legal_hold_lift(actor=reviewer, case=case, reason="Settled.")
    proposed_at = timezone.now() - timedelta(hours=73)
    Case.objects.filter(pk=case.pk).update(legal_hold_lift_at=proposed_at)
    renewed = actions.case_legal_hold_lift(actor=second_reviewer, case=case, reason="Settled, I think.")
    assert renewed.legal_hold and renewed.legal_hold_lift_by == second_reviewer  # a new proposal, still held
    assert not AuditEvent.objects.filter(action=Action.CASE_LEGAL_HOLD_LIFTED).exists()
    event = AuditEvent.objects.filter(action=Action.CASE_LEGAL_HOLD_LIFT_PROPOSED).order_by("-seq").first()
    assert event.actor == second_reviewer
    assert event.details["replaces"] == {"proposed_by": "reviewer", "proposed_at": proposed_at.isoformat()}
    # the page tells a lapsed proposal apart
    Case.objects.filter(pk=case.pk).update(legal_hold_lift_at=proposed_at)
    client.force_login(reviewer)
    page = client.get(reverse("investigations:case_legal_hold", args=[case.pk])).content.decode()
    assert "This proposal has lapsed" in page
    # and a fresh one is confirmed by a different reviewer as before
    actions.case_legal_hold_lift(actor=reviewer, case=case, reason="Settled: the agreement is signed.")
    assert not actions.case_legal_hold_lift(actor=second_reviewer, case=case, reason="Checked it.").legal_hold
