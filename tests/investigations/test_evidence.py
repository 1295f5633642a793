"""Evidence: upload with Custos's own hash and sniffed type, immutability, versions, who reads
what, saving query results under a grant, and the chain of custody on the ledger."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.test import RequestFactory

from audit.events import Action
from audit.models import AuditEvent
from investigations import access, actions, custody, gateway
from investigations.actions import evidence as evidence_actions
from investigations.errors import InvalidTransition, ResultsUnavailable
from investigations.models import Alert, AlertKind, Evidence, Grant, Integrity, QueryResult
from investigations.models.grant import db_now
from tests.conftest import make_legacy_user

from .evidence_helpers import EXE, HTML, PDF, PNG, TEXT, stored_files, upload
from .matrix import events_since, ledger_mark

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def _upload(case, actor, content=PDF, name="interview.pdf", **extra):
    return actions.evidence_upload(actor=actor, case=case, upload=upload(content, name), **extra)


# --- upload ---------------------------------------------------------------------------------


def test_upload_records_custos_hash_sniffed_type_and_a_ledger_event(open_case, member, evidence_store):
    mark = ledger_mark()
    # The client claims a PNG; the bytes are a PDF, and the bytes win.
    item = actions.evidence_upload(
        actor=member, case=open_case, upload=upload(PDF, "notes.pdf", "image/png"), title="Interview notes"
    )
    assert item.sha256 == hashlib.sha256(PDF).hexdigest() and item.size == len(PDF)
    assert item.content_type == "application/pdf" and item.original_name == "notes.pdf"
    assert item.stored_name.startswith(f"cases/{open_case.pk}/") and "notes" not in item.stored_name
    [path] = stored_files(evidence_store)
    assert path.read_bytes() == PDF
    assert events_since(mark) == [Action.EVIDENCE_ADDED]
    event = AuditEvent.objects.get(action=Action.EVIDENCE_ADDED)
    assert event.details["sha256"] == item.sha256 and event.case_reference == open_case.reference


def test_the_upload_handler_hashes_the_stream_as_it_arrives(settings, rf: RequestFactory):
    request = rf.post("/", {"file": upload(PDF, "x.pdf"), "title": "t"})
    received = request.FILES["file"]
    assert received.sha256 == hashlib.sha256(PDF).hexdigest() and received.size == len(PDF)
    assert custody.fingerprint_upload(received).sha256 == hashlib.sha256(PDF).hexdigest()


def test_the_upload_handler_keeps_nothing_past_the_limit(settings, rf: RequestFactory):
    settings.EVIDENCE = {**settings.EVIDENCE, "MAX_BYTES": 1000}
    received = rf.post("/", {"file": upload(b"A" * 5000, "big.txt")}).FILES["file"]
    assert received.size == 5000 and received.sha256 == ""
    received.seek(0)
    assert len(received.read()) <= 1000


@pytest.mark.parametrize(
    ("content", "name", "field", "message"),
    [
        (EXE, "report.pdf", "file", "portable-executable"),  # a program named as a PDF
        (HTML, "notes.txt", "file", "text/html"),  # a page named as text
        (b"<svg onload=alert(1)></svg>", "chart.png", "file", "not accepted"),
        (b"", "empty.pdf", "file", "empty"),
        (b"A" * 2001, "big.txt", "file", "limit is 2,000 bytes"),
        (b"\x7fELF\x02\x01\x01" + bytes(range(256)), "x.txt", "file", "not accepted"),
    ],
    ids=["exe-as-pdf", "html-as-text", "svg-as-png", "empty", "too-large", "elf-as-text"],
)
def test_hostile_uploads_are_field_errors_and_change_nothing(
    open_case, member, evidence_store, settings, content, name, field, message
):
    settings.EVIDENCE = {**settings.EVIDENCE, "MAX_BYTES": 2000}
    mark = ledger_mark()
    with pytest.raises(ValidationError) as refused:
        _upload(open_case, member, content, name)
    assert message in " ".join(refused.value.message_dict[field])
    assert not Evidence.objects.exists() and stored_files(evidence_store) == [] and events_since(mark) == []


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("../../etc/passwd.txt", "passwd.txt"),
        ("..\\..\\windows\\win.ini.txt", "win.ini.txt"),
        ("a\x00b.txt", "a_b.txt"),
        ("\u202etxt.exe", "txt.exe"),
        (".hidden.txt", "hidden.txt"),
        ("x" * 300 + ".txt", "x" * 116 + ".txt"),
        ("...", "evidence"),
    ],
    ids=["traversal", "windows-traversal", "null-byte", "bidi-override", "dotfile", "long", "only-dots"],
)
def test_file_names_are_sanitised_and_never_a_storage_path(open_case, member, evidence_store, given, kept):
    item = _upload(open_case, member, TEXT, given)
    assert item.original_name == kept
    [path] = stored_files(evidence_store)
    assert path.is_relative_to(evidence_store / "cases" / str(open_case.pk)) and kept not in path.name


def test_a_png_is_sniffed_as_a_png_and_text_by_its_bytes(open_case, member, evidence_store):
    assert _upload(open_case, member, PNG, "photo.jpg").content_type == "image/png"
    assert _upload(open_case, member, TEXT, "notes.pdf").content_type == "text/plain"
    assert _upload(open_case, member, b"a,b\r\n1,2\r\n", "table.csv").content_type == "text/csv"


# --- who may add, and when ---------------------------------------------------------------------


def test_only_the_team_adds_evidence_and_a_refusal_is_recorded(open_case, other_investigator, evidence_store):
    mark = ledger_mark()
    with pytest.raises(PermissionDenied):
        _upload(open_case, other_investigator)
    assert events_since(mark) == [Action.ACCESS_DENIED] and stored_files(evidence_store) == []


def test_a_closed_case_takes_no_evidence(open_case, lead, evidence_store):
    actions.case_close(actor=lead, case=open_case, summary="Concluded.")
    open_case.refresh_from_db()
    assert open_case.evidence_is_frozen and not open_case.accepts_evidence
    with pytest.raises(PermissionDenied):  # the team keeps only view_case on a closed case
        _upload(open_case, lead)
    assert stored_files(evidence_store) == []


def test_the_state_is_checked_in_the_action_too(open_case, lead, evidence_store):
    from investigations.models import Case

    Case.objects.filter(pk=open_case.pk).update(status="closed")  # permissions not yet taken away
    open_case.refresh_from_db()
    with pytest.raises(InvalidTransition):
        _upload(open_case, lead)
    assert stored_files(evidence_store) == []


# --- immutability and versions -----------------------------------------------------------------


def test_evidence_never_changes_and_is_not_deleted_while_the_case_is_open(open_case, member, evidence_store):
    item = _upload(open_case, member)
    item.title = "Changed"
    with pytest.raises(ValueError, match="never changes"):
        item.save()
    with pytest.raises(ValueError, match="never changes"):
        item.save(update_fields=["title"])
    with pytest.raises(ValueError, match="not deleted"):
        item.delete()
    assert Evidence.objects.get(pk=item.pk).title == "interview.pdf"


def test_a_new_version_points_to_the_one_it_supersedes(open_case, member, lead, evidence_store):
    first = _upload(open_case, member, PDF, "v1.pdf")
    second = _upload(open_case, lead, PDF + b"% revised\n", "v2.pdf", supersedes=first)
    assert (second.version, second.supersedes_id) == (2, first.pk)
    assert list(Evidence.objects.current()) == [second]
    assert Evidence.objects.get(pk=first.pk).sha256 == hashlib.sha256(PDF).hexdigest()
    assert len(stored_files(evidence_store)) == 2
    with pytest.raises(ValidationError) as refused:
        _upload(open_case, member, PDF, "v2b.pdf", supersedes=first)
    assert "already superseded" in refused.value.message_dict["supersedes"][0]


# --- who reads ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "sees"),
    [
        ("lead", True),
        ("member", True),
        ("other_investigator", False),
        ("reviewer", False),  # approved the case: sees the case, not its evidence
        ("auditor", False),
        ("admin_user", False),
        ("superuser", False),
        ("outsider", False),
        ("inactive_user", False),
    ],
)
def test_documents_are_the_teams(open_case, member, evidence_store, request, persona, sees):
    item = _upload(open_case, member)
    user = request.getfixturevalue(persona)
    assert access.evidence_visible_to(user).filter(pk=item.pk).exists() is sees
    if not sees:
        with pytest.raises(Http404):
            access.get_evidence_for(user, item.pk)


def test_an_ex_member_no_longer_reads_the_documents(open_case, lead, member, evidence_store):
    item = _upload(open_case, member)
    actions.case_remove_member(actor=lead, case=open_case, user=member)
    assert not access.evidence_visible_to(member).filter(pk=item.pk).exists()


def test_a_dual_role_legacy_user_reads_nothing_by_role(open_case, member, evidence_store):
    item = _upload(open_case, member)
    legacy = make_legacy_user("legacy", ["investigator", "legal_reviewer", "auditor"])
    assert not access.evidence_visible_to(legacy).filter(pk=item.pk).exists()


def test_every_read_is_on_the_ledger(open_case, member, evidence_store):
    item = _upload(open_case, member)
    mark = ledger_mark()
    actions.evidence_view(actor=member, evidence=item)
    with actions.evidence_download(actor=member, evidence=item) as handle:
        assert handle.read() == PDF
    with actions.evidence_release(actor=member, evidence=item, recipient="External counsel", reason="Tribunal.") as h:
        assert h.read() == PDF
    assert events_since(mark) == [Action.EVIDENCE_VIEWED, Action.EVIDENCE_DOWNLOADED, Action.EVIDENCE_RELEASED]
    release = AuditEvent.objects.get(action=Action.EVIDENCE_RELEASED)
    assert release.details["recipient"] == "External counsel" and release.details["sha256"] == item.sha256


def test_a_release_needs_a_recipient_and_a_reason(open_case, member, evidence_store):
    item = _upload(open_case, member)
    mark = ledger_mark()
    with pytest.raises(ValidationError) as refused:
        actions.evidence_release(actor=member, evidence=item, recipient=" ", reason="")
    assert set(refused.value.message_dict) == {"recipient", "reason"} and events_since(mark) == []


# --- saving query results -----------------------------------------------------------------------


def test_a_grantee_saves_a_result_as_csv_and_json(succeeded_query, lead, evidence_store):
    mark = ledger_mark()
    csv_item, json_item = actions.evidence_save_query_result(actor=lead, query=succeeded_query)
    assert events_since(mark) == [Action.EVIDENCE_ADDED, Action.EVIDENCE_ADDED]
    grant = succeeded_query.grant
    for item in (csv_item, json_item):
        assert item.kind == "query_result" and item.grant_id == grant.pk and item.query_id == succeeded_query.pk
        assert item.result_digest == succeeded_query.digest and item.uploaded_by == lead
        assert item.scope["subjects"] == [int(subject) for subject in grant.subjects]
        assert custody.rehash(item.stored_name).sha256 == item.sha256
    with custody.storage().open(json_item.stored_name) as handle:
        document = json.load(handle)
    assert gateway.result_digest(document["columns"], document["rows"]) == succeeded_query.digest
    assert document["grant"] == grant.pk and document["scope"]["categories"] == list(grant.categories)
    with custody.storage().open(csv_item.stored_name) as handle:
        lines = handle.read().decode().splitlines()
    assert len(lines) == succeeded_query.row_count + 1


def test_saved_csv_cells_are_guarded_against_formulas():
    result = QueryResult(columns=["=HYPERLINK()", "ip"], rows=[["@SUM(A1)", "+1"], ["-2", "10.0.0.1"]])
    text = evidence_actions._csv_bytes(result).decode()
    assert text.splitlines() == ["'=HYPERLINK(),ip", "'@SUM(A1),'+1", "'-2,10.0.0.1"]


def test_saving_twice_in_one_format_is_a_field_error(succeeded_query, lead, evidence_store):
    actions.evidence_save_query_result(actor=lead, query=succeeded_query, formats=["csv"])
    with pytest.raises(ValidationError) as refused:
        actions.evidence_save_query_result(actor=lead, query=succeeded_query, formats=["csv", "json"])
    assert "already saved as CSV" in refused.value.message_dict["formats"][0]
    with pytest.raises(ValidationError):
        actions.evidence_save_query_result(actor=lead, query=succeeded_query, formats=["xlsx"])


def test_a_team_member_who_is_not_a_grantee_cannot_save_or_read(succeeded_query, lead, member, evidence_store):
    with pytest.raises(ResultsUnavailable):
        actions.evidence_save_query_result(actor=member, query=succeeded_query)
    saved = actions.evidence_save_query_result(actor=lead, query=succeeded_query)
    assert not access.evidence_visible_to(member).filter(pk__in=[item.pk for item in saved]).exists()


def _end(grant: Grant, how: str, reviewer) -> None:
    if how == "expired":
        Grant.objects.filter(pk=grant.pk).update(expires_at=db_now() - timedelta(seconds=1))
    else:
        actions.grant_revoke(actor=reviewer, grant=grant, reason="Done.")


@pytest.mark.parametrize("how", ["expired", "revoked"])
def test_after_the_grant_ends_the_result_cannot_be_saved_but_the_evidence_stays_readable(
    succeeded_query, lead, reviewer, evidence_store, how
):
    [item] = actions.evidence_save_query_result(actor=lead, query=succeeded_query, formats=["json"])
    _end(succeeded_query.grant, how, reviewer)
    mark = ledger_mark()
    with pytest.raises(ResultsUnavailable):
        actions.evidence_save_query_result(actor=lead, query=succeeded_query, formats=["csv"])
    assert events_since(mark) == []
    readable = access.get_evidence_for(lead, item.pk)
    with actions.evidence_download(actor=lead, evidence=readable) as handle:
        assert json.load(handle)["result_digest"] == succeeded_query.digest


@pytest.mark.parametrize(
    "persona", ["member", "reviewer", "second_reviewer", "auditor", "admin_user", "superuser", "other_investigator"]
)
def test_query_result_evidence_is_for_the_grantees_only(succeeded_query, lead, evidence_store, request, persona):
    saved = actions.evidence_save_query_result(actor=lead, query=succeeded_query)
    user = request.getfixturevalue(persona)
    assert not access.evidence_visible_to(user).filter(pk__in=[item.pk for item in saved]).exists()
    assert access.evidence_visible_to(lead).filter(pk__in=[item.pk for item in saved]).count() == 2


# --- custody --------------------------------------------------------------------------------------


def test_the_periodic_check_finds_a_file_changed_behind_the_applications_back(open_case, member, evidence_store):
    item = _upload(open_case, member)
    other = _upload(open_case, member, TEXT, "notes.txt")
    run = actions.evidence_verify_due(batch_size=1)
    assert (run.checked, run.failed) == (2, [])
    assert set(Evidence.objects.values_list("integrity", flat=True)) == {Integrity.INTACT}
    assert AuditEvent.objects.filter(action=Action.EVIDENCE_VERIFIED).count() == 2

    (evidence_store / item.stored_name).write_bytes(PDF.replace(b"Catalog", b"Catalug"))
    run = actions.evidence_verify_due()
    assert run.failed == [item.pk]
    assert Evidence.objects.get(pk=item.pk).integrity == Integrity.MISMATCH
    assert Evidence.objects.get(pk=other.pk).integrity == Integrity.INTACT
    failed = AuditEvent.objects.get(action=Action.EVIDENCE_INTEGRITY_FAILED)
    assert failed.details["expected_sha256"] == item.sha256 and failed.details["found_sha256"] != item.sha256
    [alert] = Alert.objects.filter(kind=AlertKind.EVIDENCE_INTEGRITY)
    assert alert.case_id == open_case.pk and alert.event_seq == failed.seq and alert.severity == "critical"

    actions.evidence_verify_due()  # still changed: recorded again, not alerted again
    assert AuditEvent.objects.filter(action=Action.EVIDENCE_INTEGRITY_FAILED).count() == 2
    assert Alert.objects.filter(kind=AlertKind.EVIDENCE_INTEGRITY).count() == 1


def test_the_periodic_check_finds_a_missing_file(open_case, member, evidence_store):
    item = _upload(open_case, member)
    (evidence_store / item.stored_name).unlink()
    from investigations.tasks import verify_evidence

    assert verify_evidence() == {"checked": 1, "failed": [item.pk]}
    assert Evidence.objects.get(pk=item.pk).integrity == Integrity.MISSING
    [alert] = Alert.objects.filter(kind=AlertKind.EVIDENCE_INTEGRITY)
    assert "missing" in alert.summary


def test_the_oversight_scan_does_not_raise_the_alert_twice(open_case, member, evidence_store):
    from investigations.actions.oversight import alerts_scan

    item = _upload(open_case, member)
    (evidence_store / item.stored_name).unlink()
    actions.evidence_verify_due()
    alerts_scan()
    assert Alert.objects.filter(kind=AlertKind.EVIDENCE_INTEGRITY).count() == 1


def test_the_check_is_on_the_beat_schedule(settings):
    assert settings.CELERY_BEAT_SCHEDULE["verify-evidence"]["task"] == "investigations.verify_evidence"


def test_the_timeline_tells_evidence_without_reads(open_case, member, lead, evidence_store):
    from investigations import timeline

    first = _upload(open_case, member, title="Interview notes")
    second = _upload(open_case, lead, PDF + b"%v2", "v2.pdf", title="Interview notes", supersedes=first)
    actions.evidence_download(actor=member, evidence=first).close()
    sentences = [timeline.entry(event).sentence for event in timeline.case_events(open_case, kind="evidence")]
    assert sentences == [
        f"member added “Interview notes” as evidence (SHA-256 {first.sha256[:12]}…).",
        f"lead added version 2 of “Interview notes” as evidence (SHA-256 {second.sha256[:12]}…).",
    ]
