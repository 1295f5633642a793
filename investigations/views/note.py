"""Note pages: edit (the author) and the history of versions (the team)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from accounts.http import SignedInRequest

from .. import actions
from ..access import get_note_for
from ..forms import apply_errors
from ..forms.case import NoteForm
from . import conflict


def note_edit(request: SignedInRequest, pk: int) -> HttpResponse:
    note = get_note_for(request.user, pk, edit=True)
    if note.case.is_closed:
        return conflict(request, "The case is closed; its notes no longer change.", case=note.case)
    form = NoteForm(request.POST or None, initial={"text": note.text})
    if request.method == "POST" and form.is_valid():
        try:
            actions.note_edit(actor=request.user, note=note, text=form.cleaned_data["text"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, "Note saved; the earlier version is kept in its history.")
            return redirect(reverse("investigations:case_detail", args=[note.case_id]) + f"#note-{note.pk}")
    return render(request, "investigations/note_form.html", {"note": note, "case": note.case, "form": form})


def note_history(request: SignedInRequest, pk: int) -> HttpResponse:
    note = get_note_for(request.user, pk)
    versions = note.versions.order_by("-number")
    return render(request, "investigations/note_history.html", {"note": note, "case": note.case, "versions": versions})
