"""The protected-subject registry page for senior legal reviewers (anyone else: 404)."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from .. import access, actions
from ..forms import apply_errors
from ..forms.protected import ProtectedChangeForm, ProtectedRemoveForm, ProtectedSubjectForm


def protected_list(request: HttpRequest) -> HttpResponse:
    entries = list(access.registry_for(request.user).order_by("account_id")[:1000])
    return render(request, "investigations/protected_list.html", {"entries": entries})


def protected_add(request: HttpRequest) -> HttpResponse:
    access.registry_for(request.user)
    form = ProtectedSubjectForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            subject = actions.protected_subject_add(actor=request.user, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Account {subject.account_id} is on the registry.")
            return redirect("investigations:protected_list")
    return render(request, "investigations/protected_form.html", {"form": form})


def protected_edit(request: HttpRequest, pk: int) -> HttpResponse:
    subject = access.get_protected_for(request.user, pk)
    form = ProtectedChangeForm(request.POST or None, initial=ProtectedChangeForm.initial_from(subject))
    if request.method == "POST" and form.is_valid():
        try:
            actions.protected_subject_change(actor=request.user, subject=subject, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Registry entry for account {subject.account_id} changed.")
            return redirect("investigations:protected_list")
    return render(request, "investigations/protected_form.html", {"form": form, "subject": subject})


def protected_remove(request: HttpRequest, pk: int) -> HttpResponse:
    subject = access.get_protected_for(request.user, pk)
    form = ProtectedRemoveForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            actions.protected_subject_remove(actor=request.user, subject=subject, reason=form.cleaned_data["reason"])
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Account {subject.account_id} is no longer on the registry.")
            return redirect("investigations:protected_list")
    return render(request, "investigations/protected_remove.html", {"form": form, "subject": subject})
