"""Evidence pages and API: who reads which item in which state (one matrix, pages and API),
upload forms with field errors, versions, downloads and saving a query's result.

The matrix's personas are the ones evidence is about: the lead (the grant's grantee), a team
member who is not a grantee, an ex-member (was on the team and a grantee, then removed), an
investigator on another case, the legal reviewer who approved the case, an auditor, staff, a
superuser, an outsider and anonymous. Every 200 records exactly one read; a 404 records nothing.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from audit.events import Action
from investigations import actions
from investigations.actions import lifecycle
from investigations.models import Evidence, Grant
from investigations.models.grant import db_now
from tests.api.conftest import token_client
from tests.conftest import make_user

from .evidence_helpers import EXE, PDF, upload
from .fixtures import file_request
from .matrix import events_since, ledger_mark, observed, parse

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

# fmt: off
EVIDENCE_MATRIX = """
state              lead  member ex_member other reviewer auditor admin super outsider anon
document           200   200    404       404   404      404     404   404   404      login
result             200   404    404       404   404      404     404   404   404      login
result_expired     200   404    404       404   404      404     404   404   404      login
result_revoked     200   404    404       404   404      404     404   404   404      login
result_case_closed 200   404    404       404   404      404     404   404   404      login
"""
# fmt: on
PERSONAS, CELLS = parse(EVIDENCE_MATRIX, key_columns=1)
FIXTURES = {
    "lead": "lead",
    "member": "member",
    "other": "other_investigator",
    "reviewer": "reviewer",
    "auditor": "auditor",
    "admin": "admin_user",
    "super": "superuser",
    "outsider": "outsider",
}
READS = {
    "page detail": ("page", "investigations:evidence_detail", Action.EVIDENCE_VIEWED),
    "page download": ("page", "investigations:evidence_download", Action.EVIDENCE_DOWNLOADED),
    "api detail": ("api", "api:evidence-detail", Action.EVIDENCE_VIEWED),
    "api download": ("api", "api:evidence-download", Action.EVIDENCE_DOWNLOADED),
}


@pytest.fixture
def ex_member(open_case, lead):
    user = make_user("ex_member", ["investigator"])
    actions.case_add_member(actor=lead, case=open_case, user=user)
    return user


def _shared_grant(open_case, lead, ex_member, second_reviewer) -> Grant:
    """A grant to the lead and the soon-to-be ex-member, with a finished ip_logs query by the lead."""
    data_request = actions.request_submit(actor=lead, request=file_request(open_case, lead, subjects=("1", "2", "3")))
    actions.request_decide(actor=second_reviewer, request=data_request, outcome="approve", grantees=[lead, ex_member])
    data_request.refresh_from_db()
    return data_request.grant


def _item_in(state: str, *, open_case, lead, member, ex_member, reviewer, second_reviewer) -> Evidence:
    if state == "document":
        item = actions.evidence_upload(actor=member, case=open_case, upload=upload())
        actions.case_remove_member(actor=lead, case=open_case, user=ex_member)
        return item
    grant = _shared_grant(open_case, lead, ex_member, second_reviewer)
    query = actions.query_execute_now(actor=lead, grant=grant, category="ip_logs")
    [item] = actions.evidence_save_query_result(actor=lead, query=query, formats=["json"])
    if state == "result_expired":
        Grant.objects.filter(pk=grant.pk).update(expires_at=db_now() - timedelta(seconds=1))
        lifecycle.grants_expire_due()
        actions.case_remove_member(actor=lead, case=open_case, user=ex_member)  # stays a grantee of the ended grant
        assert grant.grantees.filter(pk=ex_member.pk).exists()
    elif state == "result_revoked":
        actions.grant_revoke(actor=reviewer, grant=grant, reason="Done.")
        actions.case_remove_member(actor=lead, case=open_case, user=ex_member)
    elif state == "result_case_closed":
        actions.case_remove_member(actor=lead, case=open_case, user=ex_member)
        actions.case_close(actor=lead, case=open_case, summary="Concluded.")
    else:
        actions.case_remove_member(actor=lead, case=open_case, user=ex_member)
    return item


@pytest.mark.parametrize("state", sorted(state for (state,) in CELLS))
def test_evidence_matrix(
    state, request, client, open_case, lead, member, ex_member, reviewer, second_reviewer, store, evidence_store
):
    item = _item_in(
        state,
        open_case=open_case,
        lead=lead,
        member=member,
        ex_member=ex_member,
        reviewer=reviewer,
        second_reviewer=second_reviewer,
    )
    failures = []
    for persona, expected in CELLS[(state,)].items():
        user = (
            ex_member
            if persona == "ex_member"
            else request.getfixturevalue(FIXTURES[persona])
            if persona in FIXTURES
            else None
        )
        for read, (kind, name, recorded) in READS.items():
            url = reverse(name, args=[item.pk])
            if kind == "api":
                api = token_client(user) if user else APIClient()
                mark = ledger_mark()
                response = api.get(url)
                want = "401" if expected == "login" else expected
                got = str(response.status_code)
            else:
                client.logout()
                if user:
                    client.force_login(user)
                mark = ledger_mark()  # after logging in, which is recorded too
                response = client.get(url)
                want, got = expected, observed(response)
            events = events_since(mark)
            if got != want:
                failures.append(f"{persona} {read}: expected {want}, got {got}")
            elif want == "200" and events != [recorded]:
                failures.append(f"{persona} {read}: should record exactly {recorded}, recorded {events}")
            elif want != "200" and events:
                failures.append(f"{persona} {read}: a refusal should record nothing, recorded {events}")
            elif want == "200" and "download" in read:
                assert b"".join(response.streaming_content) and response["X-Evidence-SHA256"] == item.sha256
    assert not failures, f"evidence in state {state}:\n" + "\n".join(failures)


# --- the case page and the upload form -------------------------------------------------------


def test_the_case_page_shows_each_items_hash_and_the_upload_form(client, open_case, member, evidence_store):
    item = actions.evidence_upload(actor=member, case=open_case, upload=upload(), title="Interview notes")
    client.force_login(member)
    page = client.get(reverse("investigations:case_detail", args=[open_case.pk])).content.decode()
    assert item.sha256 in page and "Interview notes" in page and 'enctype="multipart/form-data"' in page


def test_a_document_uploaded_through_the_page_is_hashed_as_it_streams_in(client, open_case, member, evidence_store):
    client.force_login(member)
    response = client.post(
        reverse("investigations:case_evidence_add", args=[open_case.pk]),
        {"file": upload(PDF, "../../interview.pdf", "text/html"), "title": ""},
    )
    item = Evidence.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "investigations:evidence_detail", args=[item.pk]
    )
    assert item.sha256 == hashlib.sha256(PDF).hexdigest() and item.content_type == "application/pdf"
    assert item.original_name == item.title == "interview.pdf"
    detail = client.get(response["Location"]).content.decode()
    assert item.sha256 in detail


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({}, "file", "This field is required"),
        ({"file": upload(EXE, "report.pdf")}, "file", "not accepted"),
        ({"file": upload(b"A" * 300, "big.txt")}, "file", "limit is 200 bytes"),
        ({"file": upload(b"", "empty.txt")}, "file", "empty"),
        ({"file": upload(), "title": "t" * 201}, "title", "at most 200"),
        ({"file": upload(), "supersedes": "99999"}, "supersedes", "no such item"),
        ({"file": upload(), "supersedes": "9" * 30}, "supersedes", "less than or equal"),
    ],
    ids=["no-file", "disguised", "too-large", "empty", "long-title", "unknown-version", "huge-id"],
)
def test_bad_uploads_are_field_errors_on_the_page(
    client, open_case, member, evidence_store, settings, data, field, message
):
    settings.EVIDENCE = {**settings.EVIDENCE, "MAX_BYTES": 200}
    client.force_login(member)
    mark = ledger_mark()
    response = client.post(reverse("investigations:case_evidence_add", args=[open_case.pk]), data)
    assert response.status_code == 200
    errors = " ".join(str(error) for error in response.context["evidence_form"].errors.get(field, []))
    assert message.lower() in errors.lower(), response.context["evidence_form"].errors
    assert not Evidence.objects.exists() and events_since(mark) == []


def test_a_new_version_through_the_page_keeps_the_old_one(client, open_case, member, lead, evidence_store):
    first = actions.evidence_upload(actor=member, case=open_case, upload=upload(), title="Interview notes")
    client.force_login(lead)
    page = client.get(reverse("investigations:evidence_detail", args=[first.pk])).content.decode()
    assert "Add a new version" in page
    response = client.post(
        reverse("investigations:case_evidence_add", args=[open_case.pk]),
        {"file": upload(PDF + b"%revised\n", "v2.pdf"), "supersedes": first.pk},
    )
    second = Evidence.objects.get(supersedes=first)
    assert response["Location"] == reverse("investigations:evidence_detail", args=[second.pk])
    history = client.get(reverse("investigations:evidence_detail", args=[first.pk])).content.decode()
    assert first.sha256 in history and second.sha256 in history and "superseded" in history
    response = client.post(
        reverse("investigations:case_evidence_add", args=[open_case.pk]),
        {"file": upload(PDF, "v2b.pdf"), "supersedes": first.pk},
    )
    assert "already superseded" in response.content.decode() and Evidence.objects.count() == 2


def test_a_release_is_recorded_then_downloaded(client, open_case, member, evidence_store):
    item = actions.evidence_upload(actor=member, case=open_case, upload=upload())
    client.force_login(member)
    url = reverse("investigations:evidence_release", args=[item.pk])
    assert "recipient" in client.post(url, {"recipient": "", "reason": ""}).context["form"].errors
    mark = ledger_mark()
    response = client.post(url, {"recipient": "Employment tribunal", "reason": "Disclosure order 12/2026."})
    assert b"".join(response.streaming_content) == PDF and events_since(mark) == [Action.EVIDENCE_RELEASED]


# --- saving a query's result --------------------------------------------------------------------


def test_a_grantee_saves_a_result_from_the_page(client, succeeded_query, lead, evidence_store):
    client.force_login(lead)
    url = reverse("investigations:query_save_evidence", args=[succeeded_query.pk])
    assert "Save as evidence" in client.get(url).content.decode()
    assert client.post(url, {}).context["form"].errors["formats"]
    response = client.post(url, {"formats": ["csv", "json"], "title": "IP logs of the three accounts"})
    assert response.status_code == 302
    saved = Evidence.objects.filter(query=succeeded_query).order_by("format")
    assert [item.format for item in saved] == ["csv", "json"]
    assert {item.result_digest for item in saved} == {succeeded_query.digest}


def test_the_api_saves_a_result_and_refuses_after_the_grant_ended(succeeded_query, lead, reviewer, evidence_store):
    client = token_client(lead)
    url = f"/api/v1/queries/{succeeded_query.pk}/evidence/"
    assert client.post(url, {"formats": ["xml"]}, format="json").status_code == 400
    response = client.post(url, {"formats": ["json"]}, format="json")
    assert response.status_code == 201 and response.json()[0]["result_digest"] == succeeded_query.digest
    actions.grant_revoke(actor=reviewer, grant=succeeded_query.grant, reason="Done.")
    response = client.post(url, {"formats": ["csv"]}, format="json")
    assert response.status_code == 403 and response.json()["code"] == "results_unavailable"
    assert client.get(f"/api/v1/queries/{succeeded_query.pk}/results/").json()["code"] == "results_unavailable"
    [item] = client.get(f"/api/v1/cases/{succeeded_query.grant.case_id}/evidence/").json()
    download = client.get(f"/api/v1/evidence/{item['id']}/download/")
    assert download.status_code == 200 and download["X-Evidence-SHA256"] == item["sha256"]


# --- the API upload -----------------------------------------------------------------------------


def test_the_api_uploads_multipart_and_lists_what_the_caller_may_read(open_case, member, lead, evidence_store):
    client = token_client(member)
    url = f"/api/v1/cases/{open_case.pk}/evidence/"
    response = client.post(url, {"file": upload(PDF, "a/../b.pdf"), "title": "Interview"}, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["sha256"] == hashlib.sha256(PDF).hexdigest() and body["original_name"] == "b.pdf"
    assert [item["id"] for item in token_client(lead).get(url).json()] == [body["id"]]
    refused = client.post(url, {"file": upload(EXE, "x.pdf")}, format="multipart")
    assert refused.status_code == 400 and "not accepted" in refused.json()["file"][0]
    assert client.post(url, {"title": "no file"}, format="multipart").json()["file"]
    assert client.post(url, {"title": "json"}, format="json").status_code == 415


def test_a_purged_file_is_a_409_with_its_record_kept(
    client, lead, member, reviewer, evidence_store, settings, django_capture_on_commit_callbacks
):
    from .test_retention import closed_with_evidence

    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    _case, [item, *_] = closed_with_evidence(lead, member, reviewer, days_ago=31)
    with django_capture_on_commit_callbacks(execute=True):
        actions.evidence_purge_due()
    client.force_login(member)
    detail = client.get(reverse("investigations:evidence_detail", args=[item.pk])).content.decode()
    assert item.sha256 in detail and "purged" in detail
    api = token_client(member)  # its sign-in is on the ledger: before the mark
    mark = ledger_mark()
    assert client.get(reverse("investigations:evidence_download", args=[item.pk])).status_code == 409
    release = {"recipient": "Counsel", "reason": "Tribunal."}
    assert client.post(reverse("investigations:evidence_release", args=[item.pk]), release).status_code == 409
    response = api.get(f"/api/v1/evidence/{item.pk}/download/")
    assert response.status_code == 409 and response.json()["code"] == "invalid_transition"
    assert events_since(mark) == []
