"""Markdown notes: rendered safely, edited by their author with every version kept, mentions told."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.markup import render
from investigations.models import CaseNote, Notification

from .fixtures import open_case_for
from .matrix import check_ledger, events_since, ledger_mark, observed, parse
from .test_case_matrix import _as, build_case

pytestmark = pytest.mark.django_db


def _events(action: Action) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("seq"))


@pytest.mark.parametrize(
    "markdown, present, absent",
    [
        ("<script>alert(1)</script>", "&lt;script&gt;", "<script"),
        ("[x](javascript:alert(1))", "javascript:alert(1)", 'href="javascript'),
        ('<img src=x onerror="alert(1)">', "&lt;img", "<img"),
        ("![pixel](https://tracker.example/p.png)", "", "<img"),
        ("[site](https://example.org)", 'rel="noopener noreferrer nofollow"', "onclick"),
        ("**bold** and `code`", "<strong>bold</strong>", "<script"),
        ("| a | b |\n|---|---|\n| 1 | 2 |", "<td>1</td>", "style="),
    ],
)
def test_markdown_is_rendered_safely(markdown, present, absent):
    html = render(markdown)
    assert present in html and absent not in html


def test_note_renders_on_the_case_page_without_raw_html(client, lead, reviewer):
    case = open_case_for(lead, reviewer)
    actions.case_add_note(actor=lead, case=case, text="**Finding**: <script>alert('x')</script>")
    client.force_login(lead)
    page = client.get(reverse("investigations:case_detail", args=[case.pk])).content.decode()
    assert "<strong>Finding</strong>" in page
    assert "<script>alert" not in page


def test_author_edits_and_every_version_is_kept(client, lead, member, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    note = actions.case_add_note(actor=lead, case=case, text="First draft")
    actions.note_edit(actor=lead, note=note, text="Second draft")
    actions.note_edit(actor=lead, note=note, text="Second draft")  # unchanged: no new version
    note.refresh_from_db()
    assert note.text == "Second draft" and note.version == 2 and note.edited_at is not None
    assert list(note.versions.values_list("number", "text")) == [(1, "First draft"), (2, "Second draft")]
    [edited] = _events(Action.CASE_NOTE_EDITED)
    assert edited.details["note_id"] == note.pk and edited.details["version"] == 2
    client.force_login(member)
    page = client.get(reverse("investigations:case_detail", args=[case.pk])).content.decode()
    assert "edited" in page and reverse("investigations:note_history", args=[note.pk]) in page
    history = client.get(reverse("investigations:note_history", args=[note.pk])).content.decode()
    assert "First draft" in history and "Second draft" in history


def test_only_the_author_edits_and_a_refusal_is_recorded(lead, member, reviewer):
    case = open_case_for(lead, reviewer, team=[member])
    note = actions.case_add_note(actor=lead, case=case, text="Lead's note")
    with pytest.raises(PermissionDenied):
        actions.note_edit(actor=member, note=note, text="Rewritten by someone else")
    assert _events(Action.ACCESS_DENIED)[-1].details["permission"] == "edit_note"
    assert CaseNote.objects.get(pk=note.pk).text == "Lead's note"


def test_a_note_cannot_be_changed_outside_an_edit(lead, reviewer):
    note = actions.case_add_note(actor=lead, case=open_case_for(lead, reviewer), text="Kept")
    note.text = "Quietly changed"
    with pytest.raises(ValueError):
        note.save()
    with pytest.raises(ValueError):
        note.versions.first().save()


def test_empty_edit_is_a_field_error(lead, reviewer):
    note = actions.case_add_note(actor=lead, case=open_case_for(lead, reviewer), text="Kept")
    with pytest.raises(ValidationError) as error:
        actions.note_edit(actor=lead, note=note, text="   ")
    assert "text" in error.value.message_dict and note.versions.count() == 1


def test_mentions_tell_team_members_only_once(
    lead, member, other_investigator, reviewer, django_capture_on_commit_callbacks, deliver_mail
):
    case = open_case_for(lead, reviewer, team=[member])
    text = f"@{member.username} please check; @{other_investigator.username} is not on the team; mail {lead.email}"
    with django_capture_on_commit_callbacks(execute=True):
        note = actions.case_add_note(actor=lead, case=case, text=text)
    assert [message.to for message in deliver_mail()] == [[member.email]]
    assert list(Notification.objects.values_list("recipient__username", "kind")) == [(member.username, "mention")]
    assert _events(Action.CASE_NOTE_ADDED)[-1].details["mentions"] == [member.username]
    with django_capture_on_commit_callbacks(execute=True):
        actions.note_edit(actor=lead, note=note, text=text + " (updated)")
    assert len(deliver_mail()) == 1, "an edit tells only the newly mentioned"
    assert _events(Action.CASE_NOTE_EDITED)[-1].details["mentions"] == []


def test_closed_case_notes_are_frozen(lead, reviewer):
    case = open_case_for(lead, reviewer)
    note = actions.case_add_note(actor=lead, case=case, text="Before closing")
    actions.case_close(actor=lead, case=case, summary="Done.")
    with pytest.raises(PermissionDenied):
        actions.note_edit(actor=lead, note=note, text="After closing")


# fmt: off
NOTE_MATRIX = """
page       state   lead  member other reviewer auditor admin super anon  inactive
edit       open    200   403    404   404      404     404   404   login login
edit_post  open    302   403    404   404      404     404   404   login login
history    open    200   200    404   404      404     404   404   login login
edit       closed  403   403    404   404      404     404   404   login login
edit_post  closed  403   403    404   404      404     404   404   login login
history    closed  200   200    404   404      404     404   404   login login
history    pending_approval 200 200 404 200    404     404   404   login login
"""
# fmt: on
_, NOTE_CELLS = parse(NOTE_MATRIX, key_columns=2)


@pytest.mark.parametrize(("page", "state"), sorted(NOTE_CELLS), ids=lambda value: value)
def test_note_matrix(client, cast, page, state):
    failures = []
    for persona, expected in NOTE_CELLS[(page, state)].items():
        case = build_case("open" if state == "closed" else state, cast)
        note = actions.case_add_note(actor=cast["lead"], case=case, text="The lead's note")
        if state == "closed":
            actions.case_close(actor=cast["lead"], case=case, summary="Over.")
        name = "note_history" if page == "history" else "note_edit"
        method = "post" if page == "edit_post" else "get"
        browser = _as(client, cast, persona)
        mark = ledger_mark()
        got = observed(getattr(browser, method)(reverse(f"investigations:{name}", args=[note.pk]), {"text": "New"}))
        if got != expected:
            failures.append(f"{persona}: expected {expected}, got {got}")
        elif problem := check_ledger(expected, events_since(mark)):
            failures.append(f"{persona}: {problem}")
    assert not failures, f"{page} on a {state} case:\n" + "\n".join(failures)
