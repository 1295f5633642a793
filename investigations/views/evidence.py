"""Evidence pages: add (a document or a new version), read its record, download, release a copy,
and save a query's result. Thin: ``access.py`` finds, the actions decide and record."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.http import SignedInRequest

from .. import access, actions
from ..actions.query import results_problem
from ..errors import ResultsUnavailable
from ..forms import apply_errors
from ..forms.evidence import EvidenceUploadForm, ReleaseForm, SaveResultForm
from ..models import Case, Evidence


def case_evidence(user, case: Case, form: EvidenceUploadForm | None = None) -> dict:
    """The case page's evidence section: the current items the user may read, and the upload form."""
    return {
        "evidence": access.case_evidence_for(user, case).current().order_by("-created_at", "-id"),
        "evidence_form": form or EvidenceUploadForm(),
    }


def versions_of(evidence: Evidence) -> list[Evidence]:
    """Every version of the item, newest first (the chain of ``supersedes``, both ways)."""
    chain = [evidence]
    while chain[-1].supersedes_id:
        chain.append(Evidence.objects.select_related("uploaded_by").get(pk=chain[-1].supersedes_id))
    newer = Evidence.objects.select_related("uploaded_by").filter(supersedes=evidence).first()
    while newer is not None:
        chain.insert(0, newer)
        newer = Evidence.objects.select_related("uploaded_by").filter(supersedes=newer).first()
    return chain


def _detail(request: SignedInRequest, evidence: Evidence, *, version_form=None, status: int = 200) -> HttpResponse:
    case = evidence.case
    versions = versions_of(evidence)
    can_add_version = (
        evidence.kind == "document" and versions[0].pk == evidence.pk and access.may_add_evidence(request.user, case)
    )
    # A refused version is shown with its errors, even when the item turned out not to take one.
    can_add_version = can_add_version or (version_form is not None and version_form.is_bound)
    context = {
        "evidence": evidence,
        "case": case,
        "versions": versions,
        "can_add_version": can_add_version,
        "version_form": version_form or EvidenceUploadForm(initial={"supersedes": evidence.pk}),
    }
    return render(request, "investigations/evidence_detail.html", context, status=status)


@require_POST
def case_evidence_add(request: SignedInRequest, pk: int) -> HttpResponse:
    """Upload a document, or (``supersedes``) a new version of one, to the case."""
    from .case import case_detail

    case = access.get_case_for(request.user, pk, perm=access.CONTRIBUTE_PERM)
    form = EvidenceUploadForm(request.POST, request.FILES)
    previous = None
    if form.is_valid() and form.cleaned_data["supersedes"]:
        try:
            previous = access.get_evidence_for(request.user, form.cleaned_data["supersedes"])
        except Http404:
            form.add_error("supersedes", "There is no such item on this case.")
    if form.is_valid():
        values = {name: form.cleaned_data[name] for name in ("title", "description")}
        try:
            evidence = actions.evidence_upload(
                actor=request.user, case=case, upload=form.cleaned_data["file"], supersedes=previous, **values
            )
        except ValidationError as error:
            apply_errors(form, error)
        else:
            messages.success(request, f"Evidence added. SHA-256 {evidence.sha256}.")
            return redirect("investigations:evidence_detail", pk=evidence.pk)
    if previous is not None:
        return _detail(request, previous, version_form=form)
    return case_detail(request, case.pk, evidence_form=form)


def evidence_detail(request: SignedInRequest, pk: int) -> HttpResponse:
    """The item's record: hash, type, origin, custody state and versions (the read is recorded)."""
    evidence = access.get_evidence_for(request.user, pk)
    actions.evidence_view(actor=request.user, evidence=evidence)
    return _detail(request, evidence)


def _file_response(handle, evidence: Evidence) -> FileResponse:
    response = FileResponse(
        handle, as_attachment=True, filename=evidence.original_name, content_type=evidence.content_type
    )
    response["X-Evidence-SHA256"] = evidence.sha256
    return response


def evidence_download(request: SignedInRequest, pk: int) -> HttpResponse | FileResponse:
    evidence = access.get_evidence_for(request.user, pk)
    handle = actions.evidence_download(actor=request.user, evidence=evidence)
    return _file_response(handle, evidence)


@require_http_methods(["GET", "POST"])
def evidence_release(request: SignedInRequest, pk: int) -> HttpResponse | FileResponse:
    """Hand a copy outside the case: who receives it and why go on the ledger, then the file."""
    evidence = access.get_evidence_for(request.user, pk)
    form = ReleaseForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            handle = actions.evidence_release(actor=request.user, evidence=evidence, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            return _file_response(handle, evidence)
    context = {"evidence": evidence, "case": evidence.case, "form": form}
    return render(request, "investigations/evidence_release.html", context)


@require_http_methods(["GET", "POST"])
def query_save_evidence(request: SignedInRequest, pk: int) -> HttpResponse:
    """A grantee saves a query's rows into the case's evidence while the grant is in force."""
    query = access.get_query_for(request.user, pk)
    problem = results_problem(request.user, query)
    if problem:
        raise ResultsUnavailable(problem)
    form = SaveResultForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            saved = actions.evidence_save_query_result(actor=request.user, query=query, **form.cleaned_data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            names = ", ".join(f"{item.get_format_display()} (SHA-256 {item.sha256})" for item in saved)
            messages.success(request, f"Saved as case evidence: {names}.")
            return redirect("investigations:evidence_detail", pk=saved[0].pk)
    context = {"query": query, "grant": query.grant, "case": query.grant.case, "form": form}
    return render(request, "investigations/query_save_evidence.html", context)
