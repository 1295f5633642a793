"""Markdown notes on a case: written by the team, edited by their author, every version kept.

A note's ``@name`` mentions of team members tell them (in the app and by email, after
commit); an edit tells only those it newly mentions.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action

from .. import notify as mail
from ..access import CONTRIBUTE_PERM, NOTE_EDIT_DENIED, object_perms, record_denial
from ..errors import InvalidTransition
from ..markup import mentioned_names
from ..models import Case, CaseNote, NoteVersion, NotificationKind
from ..models.case import TEXT_MAX
from .locks import locked, retry_on_conflict
from .notification import notify


def _note_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": "Write the note."})
    if len(text) > TEXT_MAX:
        raise ValidationError({"text": f"At most {TEXT_MAX} characters (this has {len(text)})."})
    return text


def _mentioned_members(case: Case, text: str) -> list[User]:
    """Team members named as ``@username`` in ``text`` (case-insensitive), by username."""
    names = mentioned_names(text)
    if not names:
        return []
    members = User.objects.filter(case_memberships__case=case, is_active=True).order_by("username")
    return [user for user in members if user.username.lower() in names]


def _tell_mentioned(*, actor: User, note: CaseNote, people: list[User]) -> None:
    people = [user for user in people if user.pk != actor.pk]
    if not people:
        return
    link = reverse("investigations:case_detail", args=[note.case_id]) + f"#note-{note.pk}"
    text = f"{actor.username} mentioned you in a note on case {note.case.reference}."
    notify(actor=actor, recipients=people, kind=NotificationKind.MENTION, text=text, link=link)
    context = {"note": note, "actor": actor, "url": mail.site_url(link)}
    mail.queue("note-mention", [user.email for user in people], context)


def _check_open(case: Case) -> None:
    if case.is_closed:
        raise InvalidTransition("The case is closed; its notes no longer change.", case=case)


@retry_on_conflict
def case_add_note(*, actor: User, case: Case, text: str) -> CaseNote:
    """Add a Markdown note to the case (version 1). Needs ``add_note``; mentioned members are told."""
    if CONTRIBUTE_PERM not in object_perms(actor, case):
        raise record_denial(actor=actor, case=case, perm=CONTRIBUTE_PERM)
    text = _note_text(text)
    with transaction.atomic():
        case = locked(Case.objects).get(pk=case.pk)
        _check_open(case)
        note = CaseNote.objects.create(case=case, author=actor, text=text)
        NoteVersion.objects.create(note=note, number=1, text=text)
        mentioned = _mentioned_members(case, text)
        audit.record(
            action=Action.CASE_NOTE_ADDED,
            actor=actor,
            target=case,
            case_reference=case.reference,
            details={"note_id": note.pk, "mentions": [user.username for user in mentioned]},
        )
        _tell_mentioned(actor=actor, note=note, people=mentioned)
    return note


@retry_on_conflict
def note_edit(*, actor: User, note: CaseNote, text: str) -> CaseNote:
    """The author replaces the note's text; the earlier versions stay, the ledger records the edit.

    Needs the author to be still on the team (``add_note``) and the case not closed. Members
    mentioned for the first time by this version are told.
    """
    case = note.case
    if note.author_id != actor.pk or CONTRIBUTE_PERM not in object_perms(actor, case):
        raise record_denial(actor=actor, case=case, perm="edit_note", message=NOTE_EDIT_DENIED)
    text = _note_text(text)
    with transaction.atomic():
        note = locked(CaseNote.objects.select_related("case")).get(pk=note.pk)
        _check_open(note.case)
        if note.text == text:
            return note
        before = {user.pk for user in _mentioned_members(note.case, note.text)}
        note.text, note.version, note.edited_at = text, note.version + 1, timezone.now()
        note.save(update_fields=["text", "version", "edited_at"])
        NoteVersion.objects.create(note=note, number=note.version, text=text)
        newly = [user for user in _mentioned_members(note.case, text) if user.pk not in before]
        audit.record(
            action=Action.CASE_NOTE_EDITED,
            actor=actor,
            target=note.case,
            case_reference=note.case.reference,
            details={"note_id": note.pk, "version": note.version, "mentions": [user.username for user in newly]},
        )
        _tell_mentioned(actor=actor, note=note, people=newly)
    return note
