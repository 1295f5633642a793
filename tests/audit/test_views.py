"""Auditor pages: access, recording of every read, keyset pagination, exports."""

from __future__ import annotations

import csv
import io
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import audit
from audit.events import Action
from audit.export import csv_cell
from audit.models import AuditEvent
from audit.views import PAGE_SIZE

pytestmark = pytest.mark.django_db

PAGES = [
    ("audit:event_list", {}),
    ("audit:event_detail", {"seq": 1}),
    ("audit:case_timeline", {"reference": "INV-2026-0001"}),
    ("audit:verification", {}),
    ("audit:export", {}),
]


def _get(client, name: str, kwargs: dict, query: str = ""):
    return client.get(reverse(name, kwargs=kwargs) + query)


def _body(response) -> str:
    return b"".join(response.streaming_content).decode() if response.streaming else response.content.decode()


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
@pytest.mark.parametrize("persona", ["outsider", "lead", "reviewer", "admin_user", "superuser"])
def test_non_auditors_get_404_everywhere(request, login, events, name, kwargs, persona):
    client = login(request.getfixturevalue(persona))
    before = AuditEvent.objects.count()
    assert _get(client, name, kwargs).status_code == 404
    assert not AuditEvent.objects.filter(
        seq__gt=before, action__in=[Action.AUDIT_VIEWED, Action.AUDIT_EXPORTED]
    ).exists()


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_anonymous_is_sent_to_login(client, events, name, kwargs):
    response = _get(client, name, kwargs)
    assert response.status_code == 302
    assert reverse("account_login") in response["Location"]


@pytest.mark.parametrize(("name", "kwargs"), PAGES)
def test_inactive_auditor_gets_404(client, auditor, events, name, kwargs):
    client.force_login(auditor)
    auditor.is_active = False
    auditor.save(update_fields=["is_active"])
    assert _get(client, name, kwargs).status_code in (302, 404)


@pytest.mark.parametrize(
    ("name", "kwargs", "action"),
    [
        ("audit:event_list", {}, Action.AUDIT_VIEWED),
        ("audit:event_detail", {"seq": 3}, Action.AUDIT_VIEWED),
        ("audit:case_timeline", {"reference": "INV-2026-0001"}, Action.AUDIT_VIEWED),
        ("audit:verification", {}, Action.AUDIT_VIEWED),
        ("audit:export", {}, Action.AUDIT_EXPORTED),
    ],
)
def test_every_auditor_page_is_recorded(login, auditor, events, name, kwargs, action):
    client = login(auditor)
    response = _get(client, name, kwargs, "?action=case.note_added")
    assert response.status_code == 200
    _body(response)
    event = AuditEvent.objects.filter(action=action).latest("seq")
    assert event.actor_id == auditor.pk
    assert event.ip == "127.0.0.1" and event.request_id
    if name in ("audit:event_list", "audit:export"):
        assert event.details["filters"] == {"action": "case.note_added"}


def test_list_filters_and_search(login, auditor, lead, events):
    audit.record(
        action=Action.CASE_OPENED, actor=lead, case_reference="INV-2026-0042", target=("investigations.case", 42)
    )
    client = login(auditor)
    page = client.get(reverse("audit:event_list"), {"actor": "lead", "case_reference": "INV-2026-0042"})
    assert [event.case_reference for event in page.context["events"]] == ["INV-2026-0042"]
    page = client.get(reverse("audit:event_list"), {"q": "0042"})
    assert len(page.context["events"]) == 1
    page = client.get(reverse("audit:event_list"), {"target_type": "investigations.case", "target_id": "42"})
    assert len(page.context["events"]) == 1
    page = client.get(reverse("audit:event_list"), {"date_from": "2000-01-01", "date_to": "2000-01-02"})
    assert page.context["events"] == []


def test_keyset_pagination_walks_every_event_once(login, auditor):
    for number in range(PAGE_SIZE + 7):
        audit.record(action=Action.CASE_NOTE_ADDED, details={"n": number})
    client = login(auditor)
    first = client.get(reverse("audit:event_list"), {"action": "case.note_added"})
    second = client.get(reverse("audit:event_list") + first.context["next_url"])
    seqs = [e.seq for e in first.context["events"]] + [e.seq for e in second.context["events"]]
    assert len(seqs) == PAGE_SIZE + 7 == len(set(seqs))
    assert seqs == sorted(seqs, reverse=True)
    assert second.context["next_url"] is None
    assert "before=" in first.context["next_url"] and "action=case.note_added" in first.context["next_url"]


def _list_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("audit:event_list")).status_code == 200
    return len(queries)


def test_list_query_count_does_not_grow_with_events(login, auditor):
    client = login(auditor)
    for number in range(10):
        audit.record(action=Action.CASE_NOTE_ADDED, case_reference="INV-2026-0001", details={"n": number})
    small = _list_queries(client)
    for number in range(490):
        audit.record(action=Action.CASE_NOTE_ADDED, case_reference="INV-2026-0001", details={"n": number})
    large = _list_queries(client)
    assert small == large


def test_detail_shows_hash_and_neighbours(login, auditor, events):
    page = login(auditor).get(reverse("audit:event_detail", kwargs={"seq": events[4].seq}))
    html = page.content.decode()
    assert events[4].hash in html and events[3].hash in html and events[5].hash in html
    assert page.context["hash_ok"] and page.context["link_ok"]


def test_detail_of_an_event_not_sealed_yet_says_so_and_claims_no_hash(login, auditor, events, db):
    from django.db import connection

    client = login(auditor)
    waiting = audit.record(action=Action.CASE_OPENED, case_reference="INV-2026-0002")
    page = client.get(reverse("audit:event_detail", kwargs={"seq": waiting.seq}))
    html = page.content.decode()
    if connection.vendor == "postgresql":  # the sealer chains it after commit
        assert "not sealed yet" in html and "does not recompute" not in html
        assert not page.context["hash_ok"] and page.context["link_ok"] is None
    else:  # SQLite chains at append time
        assert page.context["hash_ok"] and page.context["link_ok"]


def test_case_timeline_is_oldest_first(login, auditor, events):
    audit.record(action=Action.CASE_OPENED, case_reference="INV-2026-0002")
    page = login(auditor).get(reverse("audit:case_timeline", kwargs={"reference": "INV-2026-0001"}))
    assert [e.seq for e in page.context["events"]] == [e.seq for e in events]


def test_verification_page_shows_last_run_and_checkpoint(login, auditor, events):
    from audit.checkpoints import seal
    from audit.tasks import verify_audit_chain

    sealed = seal()
    verify_audit_chain()
    html = login(auditor).get(reverse("audit:verification")).content.decode()
    assert sealed.head in html
    assert "OK" in html


def test_admin_is_read_only_and_for_auditors_only(client, auditor, admin_user, superuser, events):
    from django.contrib.admin.sites import site

    model_admin = site._registry[AuditEvent]
    client.force_login(superuser)
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403
    request = type("R", (), {"user": superuser})()
    assert not model_admin.has_add_permission(request)
    assert not model_admin.has_change_permission(request, events[0])
    assert not model_admin.has_delete_permission(request, events[0])
    assert not model_admin.has_view_permission(request)


# --- exports -----------------------------------------------------------------------------

HOSTILE = "=cmd|' /C calc'!A0"


@pytest.fixture
def hostile_events(db, lead):
    audit.record(
        action=Action.CASE_NOTE_ADDED,
        actor=lead,
        case_reference=HOSTILE[:32],
        target=("investigations.case", "+SUM(1)"),
        details={"note": 'line one\nline two\r\n,"quoted"', "bell": "\x07", "sep": "\u2028"},
    )
    audit.record(action=Action.CASE_NOTE_ADDED, target=("x", "@import"), details={"tab": "\tx"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=cmd|' /C calc'!A0", "'=cmd|' /C calc'!A0"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\\x09x"),
        ("\rx", "'\\x0dx"),
        ("a\nb", "a\\x0ab"),
        ("a\u2028b", "a\\u2028b"),
        ("plain", "plain"),
        (None, ""),
    ],
)
def test_csv_cell(value, expected):
    assert csv_cell(value) == expected


def test_csv_export_is_neutralised_one_line_per_event(login, auditor, hostile_events):
    response = login(auditor).get(reverse("audit:export"), {"format": "csv", "action": "case.note_added"})
    assert response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    body = _body(response)
    lines = body.split("\r\n")
    assert lines[-1] == "" and len(lines) == 4  # header, two events, final terminator
    assert all("\n" not in line and "\r" not in line for line in lines)
    table = list(csv.DictReader(io.StringIO(body)))
    assert table[0]["case_reference"] == "'" + HOSTILE[:32]
    assert table[0]["target_id"] == "'+SUM(1)"
    assert table[1]["target_id"] == "'@import"
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in table for cell in row.values())
    assert json.loads(table[0]["details"])["note"] == 'line one\nline two\r\n,"quoted"'


def test_jsonl_export_one_line_per_event(login, auditor, hostile_events):
    response = login(auditor).get(reverse("audit:export"), {"format": "jsonl", "action": "case.note_added"})
    body = _body(response)
    lines = body.splitlines()
    assert len(lines) == 2 and body.endswith("\n")
    assert body.isascii()
    first = json.loads(lines[0])
    assert first["case_reference"] == HOSTILE[:32]
    assert first["details"]["sep"] == "\u2028"


def test_export_of_a_sequence_range(login, auditor, events):
    body = _body(login(auditor).get(reverse("audit:export"), {"format": "jsonl", "seq_from": 3, "seq_to": 5}))
    assert [json.loads(line)["seq"] for line in body.splitlines()] == [3, 4, 5]
