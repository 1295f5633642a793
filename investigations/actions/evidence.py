"""Evidence and its chain of custody: add, read, save a query result, re-verify.

Every step is on the ledger: ``evidence.added`` (an upload, a new version or a saved query
result, with its SHA-256), ``evidence.viewed`` and ``evidence.downloaded`` (every read),
``evidence.verified`` or ``evidence.integrity_failed`` (every re-hash of the stored bytes,
the failure alerting oversight at once) and ``evidence.released`` (a copy handed outside
the case). The file is written to storage before the transaction that records it; if that
transaction fails, the file is removed again, so no item exists without its event.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.db import transaction
from django.db.models.functions import Now
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action
from audit.export import csv_cell

from .. import custody, gateway
from ..access import check_add_evidence
from ..errors import InvalidTransition, ResultsUnavailable
from ..models import Case, DataQuery, Evidence, EvidenceFormat, EvidenceKind, Grant, Integrity, QueryResult
from ..models.case import TEXT_MAX, TITLE_MAX
from ..models.grant import db_now
from . import oversight
from .locks import locked, retry_on_conflict
from .query import results_problem

logger = logging.getLogger(__name__)


# --- adding -------------------------------------------------------------------------------


@dataclass
class _Checked:
    fingerprint: custody.Fingerprint
    content_type: str
    name: str
    title: str
    description: str


def _check_upload(upload: File | None, title: str, description: str) -> _Checked:
    """Every problem with an upload as a field error, before anything is stored."""
    if upload is None:
        raise ValidationError({"file": "Choose a file to upload."})
    limit = custody.max_bytes()
    if upload.size is not None and upload.size > limit:
        raise ValidationError({"file": f"The file is {upload.size:,} bytes; the limit is {limit:,} bytes."})
    name = custody.clean_filename(upload.name)
    found = custody.fingerprint_upload(upload)
    if found.size > limit:
        raise ValidationError({"file": f"The file is {found.size:,} bytes; the limit is {limit:,} bytes."})
    if found.size == 0:
        raise ValidationError({"file": "The file is empty."})
    content_type = custody.sniff_upload(upload, name)
    if content_type not in custody.allowed_types():
        allowed = ", ".join(custody.allowed_types())
        raise ValidationError({"file": f"Files of type {content_type} are not accepted (accepted: {allowed})."})
    title = (title or "").strip() or name
    description = (description or "").strip()
    if len(title) > TITLE_MAX:
        raise ValidationError({"title": f"At most {TITLE_MAX} characters."})
    if len(description) > TEXT_MAX:
        raise ValidationError({"description": f"At most {TEXT_MAX} characters."})
    return _Checked(found, content_type, name, title, description)


def _check_supersedes(case: Case, previous: Evidence | None) -> None:
    if previous is None:
        return
    if previous.case_id != case.pk or previous.kind != EvidenceKind.DOCUMENT:
        raise ValidationError({"supersedes": "Only a document of this case can get a new version."})
    if Evidence.objects.filter(supersedes=previous).exists():
        raise ValidationError({"supersedes": "That version is already superseded; add a version of the latest."})


def _added_details(evidence: Evidence) -> dict:
    details = {
        "evidence": evidence.pk,
        "kind": evidence.kind,
        "title": evidence.title,
        "name": evidence.original_name,
        "sha256": evidence.sha256,
        "size": evidence.size,
        "content_type": evidence.content_type,
        "version": evidence.version,
        "supersedes": evidence.supersedes_id,
    }
    if evidence.kind == EvidenceKind.QUERY_RESULT:
        details |= {
            "grant": evidence.grant_id,
            "query": evidence.query_id,
            "format": evidence.format,
            "result_digest": evidence.result_digest,
        }
    return details


def _check_accepts(case: Case) -> None:
    if not case.accepts_evidence:
        raise InvalidTransition(f"The case is {case.status_phrase}; no evidence can be added to it.", case=case)


@retry_on_conflict
def evidence_upload(
    *,
    actor: User,
    case: Case,
    upload: File | None,
    title: str = "",
    description: str = "",
    supersedes: Evidence | None = None,
) -> Evidence:
    """Add a team document (or a new version of one) to ``case``.

    Needs the team's ``add_note`` and a case that is not over. The SHA-256 and size are
    Custos's own (taken while the upload streamed in), the content type is sniffed from the
    bytes and must be on ``EVIDENCE["ALLOWED_TYPES"]``, the name is sanitised. A new version
    points at the item it supersedes; the old one stays as it was.
    """
    check_add_evidence(actor, case)
    _check_accepts(case)
    checked = _check_upload(upload, title, description)
    _check_supersedes(case, supersedes)
    stored = custody.store(case.pk, upload)
    try:
        with transaction.atomic():
            case = locked(Case.objects).get(pk=case.pk)
            _check_accepts(case)
            if supersedes is not None:
                supersedes = locked(Evidence.objects).get(pk=supersedes.pk)
                _check_supersedes(case, supersedes)
            evidence = Evidence.objects.create(
                case=case,
                kind=EvidenceKind.DOCUMENT,
                title=checked.title,
                description=checked.description,
                stored_name=stored,
                sha256=checked.fingerprint.sha256,
                size=checked.fingerprint.size,
                content_type=checked.content_type,
                original_name=checked.name,
                uploaded_by=actor,
                version=supersedes.version + 1 if supersedes else 1,
                supersedes=supersedes,
            )
            audit.record(
                action=Action.EVIDENCE_ADDED,
                actor=actor,
                target=evidence,
                case_reference=case.reference,
                details=_added_details(evidence),
            )
    except BaseException:
        custody.discard(stored)
        raise
    return evidence


# --- saving a query's result --------------------------------------------------------------


def frozen_scope(grant: Grant) -> dict:
    """The grant's approved scope, as the saved result records it."""
    return {
        "subjects": [int(subject) for subject in grant.subjects],
        "categories": list(grant.categories),
        "window_start": grant.window_start.isoformat(),
        "window_end": grant.window_end.isoformat(),
        "starts_at": grant.starts_at.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
    }


def _csv_bytes(result: QueryResult) -> bytes:
    """The rows as CSV, every cell through the ledger export's formula guard (``csv_cell``)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([csv_cell(column) for column in result.columns])
    for row in result.rows:
        writer.writerow([csv_cell(cell) for cell in row])
    return buffer.getvalue().encode("utf-8")


def _json_bytes(query: DataQuery, result: QueryResult, actor: User, scope: dict) -> bytes:
    """The rows as JSON with where they came from; ``columns`` and ``rows`` are exactly the
    stored result, so ``result_digest`` can be recomputed from the file."""
    document = {
        "custos_evidence": "query_result",
        "case": query.grant.case.reference,
        "grant": query.grant_id,
        "query": query.pk,
        "parameters": query.parameters(),
        "scope": scope,
        "result_digest": query.digest,
        "saved_by": actor.username,
        "saved_at": timezone.now().isoformat(),
        "columns": result.columns,
        "rows": result.rows,
    }
    return json.dumps(document, ensure_ascii=False, sort_keys=True, indent=1, default=str).encode("utf-8")


FORMAT_TYPES = {EvidenceFormat.CSV: "text/csv", EvidenceFormat.JSON: "application/json"}


def _clean_formats(formats) -> list[str]:
    chosen = [str(value) for value in (formats or [])]
    if not chosen:
        raise ValidationError({"formats": "Choose CSV, JSON or both."})
    unknown = [value for value in chosen if value not in EvidenceFormat.values]
    if unknown:
        raise ValidationError({"formats": f"Unknown format: {unknown[0]!r} (CSV or JSON)."})
    return list(dict.fromkeys(chosen))


def _check_result(actor: User, query: DataQuery) -> QueryResult:
    """The rows may be saved only by someone who may read them now (database clock)."""
    problem = results_problem(actor, query, at=db_now())
    if problem:
        raise ResultsUnavailable(problem)
    result = QueryResult.objects.get(query=query)
    if gateway.result_digest(result.columns, result.rows) != query.digest:
        raise ResultsUnavailable("The stored result no longer matches its recorded digest; it cannot be saved.")
    return result


@retry_on_conflict
def evidence_save_query_result(*, actor: User, query: DataQuery, formats=("csv", "json"), title: str = "") -> list:
    """Save a completed query's rows into the case's evidence, as CSV and/or JSON.

    The only way pulled rows outlive their grant. Allowed to a grantee while the grant is in
    force by the database clock (as the gateway decides: not expired, revoked or on a case
    that is not open), re-checked under the grant's row lock so a revocation cannot slip in
    between. Each file records the grant, its frozen scope and the result digest; it is then
    readable only by that grant's grantees (``access.evidence_visible_to``).
    """
    formats = _clean_formats(formats)
    query = DataQuery.objects.select_related("grant__case").get(pk=query.pk)
    _check_result(actor, query)
    title = (title or "").strip() or f"Query #{query.pk}: {query.category_label}"
    if len(title) > TITLE_MAX:
        raise ValidationError({"title": f"At most {TITLE_MAX} characters."})
    taken = query.evidence.filter(format__in=formats).values_list("format", flat=True)
    if taken:
        raise ValidationError({"formats": f"This result is already saved as {', '.join(sorted(taken)).upper()}."})
    stored: list[str] = []
    try:
        with transaction.atomic():
            grant = locked(Grant.objects).select_related("case").get(pk=query.grant_id)
            result = _check_result(actor, query)
            scope = frozen_scope(grant)
            files = {
                EvidenceFormat.CSV: lambda: _csv_bytes(result),
                EvidenceFormat.JSON: lambda: _json_bytes(query, result, actor, scope),
            }
            saved = []
            for format in formats:
                content = files[format]()
                found = custody.fingerprint(io.BytesIO(content))
                name = custody.store(grant.case_id, ContentFile(content))
                stored.append(name)
                evidence = Evidence.objects.create(
                    case=grant.case,
                    kind=EvidenceKind.QUERY_RESULT,
                    title=title,
                    stored_name=name,
                    sha256=found.sha256,
                    size=found.size,
                    content_type=FORMAT_TYPES[format],
                    original_name=f"query-{query.pk}-{query.category}.{format}",
                    uploaded_by=actor,
                    grant=grant,
                    query=query,
                    scope=scope,
                    result_digest=query.digest,
                    format=format,
                )
                audit.record(
                    action=Action.EVIDENCE_ADDED,
                    actor=actor,
                    target=evidence,
                    case_reference=grant.case.reference,
                    details=_added_details(evidence) | {"rows": query.row_count},
                )
                saved.append(evidence)
    except BaseException:
        for name in stored:
            custody.discard(name)
        raise
    return saved


# --- reading ------------------------------------------------------------------------------


def _record_read(action: Action, *, actor: User, evidence: Evidence, **extra) -> None:
    with transaction.atomic():
        audit.record(
            action=action,
            actor=actor,
            target=evidence,
            case_reference=evidence.case.reference,
            details={"evidence": evidence.pk, "kind": evidence.kind, "sha256": evidence.sha256, **extra},
        )


def _check_kept(evidence: Evidence) -> None:
    """A purged item's record stays; its file does not (``actions.retention``)."""
    if evidence.is_purged:
        raise InvalidTransition(
            f"The file was purged on {evidence.purged_at:%Y-%m-%d}, after the case's retention period; "
            "its record and hash are kept.",
            case=evidence.case,
        )


def evidence_view(*, actor: User, evidence: Evidence, via: str = "page") -> Evidence:
    """Record ``actor`` reading an item's record (hash, origin, versions). ``evidence`` comes
    from ``access.get_evidence_for``, which decided that they may."""
    _record_read(Action.EVIDENCE_VIEWED, actor=actor, evidence=evidence, via=via)
    return evidence


def evidence_download(*, actor: User, evidence: Evidence, via: str = "page") -> File:
    """Record the download, then open the stored file. The ledger entry comes first: if it
    cannot be written, nothing is read (fail closed, as for query results)."""
    _check_kept(evidence)
    _record_read(Action.EVIDENCE_DOWNLOADED, actor=actor, evidence=evidence, via=via)
    return custody.storage().open(evidence.stored_name, "rb")


def evidence_release(*, actor: User, evidence: Evidence, recipient: str, reason: str) -> File:
    """Hand a copy outside the case (to external counsel, a court, the police): who received it
    and why are recorded with the hash, then the file is opened for the copy."""
    recipient, reason = (recipient or "").strip(), (reason or "").strip()
    errors = {}
    if not recipient:
        errors["recipient"] = "Say who receives the copy."
    if not reason:
        errors["reason"] = "Say why it leaves the case."
    if len(recipient) > TITLE_MAX:
        errors["recipient"] = f"At most {TITLE_MAX} characters."
    if len(reason) > TEXT_MAX:
        errors["reason"] = f"At most {TEXT_MAX} characters."
    if errors:
        raise ValidationError(errors)
    _check_kept(evidence)
    _record_read(Action.EVIDENCE_RELEASED, actor=actor, evidence=evidence, recipient=recipient, reason=reason)
    return custody.storage().open(evidence.stored_name, "rb")


# --- custody: re-verification ------------------------------------------------------------

FAILED = {Integrity.MISMATCH, Integrity.MISSING}


def _outcome(evidence: Evidence, found: custody.Fingerprint | None) -> str:
    if found is None:
        return Integrity.MISSING
    if found.sha256 != evidence.sha256 or found.size != evidence.size:
        return Integrity.MISMATCH
    return Integrity.INTACT


def evidence_verify(*, evidence: Evidence) -> str:
    """Re-hash one stored file against the hash taken at upload, and record the result.

    ``evidence.verified`` when it matches; ``evidence.integrity_failed`` when the bytes changed
    or the file is gone, which raises an oversight alert at once (again only if the item was
    not already known to be broken in the same way: the detector decides). Returns the
    ``Integrity`` value.
    """
    found = custody.rehash(evidence.stored_name)
    outcome = _outcome(evidence, found)
    with transaction.atomic():
        current = locked(Evidence.objects.select_related("case")).get(pk=evidence.pk)
        if current.is_purged:  # purged since the file was read: its absence is retention, not tampering
            return "purged"
        before = current.integrity
        current.integrity, current.verified_at = outcome, Now()
        current.save(update_fields=["integrity", "verified_at"])
        details = {
            "evidence": current.pk,
            "expected_sha256": current.sha256,
            "found_sha256": found.sha256 if found else None,
            "expected_size": current.size,
            "found_size": found.size if found else None,
            "result": outcome,
            "previous": before,
        }
        action = Action.EVIDENCE_VERIFIED if outcome == Integrity.INTACT else Action.EVIDENCE_INTEGRITY_FAILED
        event = audit.record(action=action, target=current, case_reference=current.case.reference, details=details)
        if outcome in FAILED:
            oversight.raise_now(event)
    if outcome in FAILED:
        logger.error("evidence %s: %s (expected %s)", evidence.pk, outcome, evidence.sha256)
    return outcome


@dataclass
class Verification:
    checked: int = 0
    failed: list[int] = field(default_factory=list)


def evidence_verify_due(*, batch_size: int | None = None) -> Verification:
    """Re-hash every stored item once, in batches: the periodic custody check.

    Items are walked by id (keyset batches of ``EVIDENCE["VERIFY_BATCH"]``), so a run visits
    each item that existed when it began exactly once, whatever the clocks say. Each item is
    verified in its own transaction after its file is read, so a large store never holds a
    lock or the ledger head while it reads. Safe to overlap: two runs at worst verify an item
    twice, and both verifications are recorded.
    """
    from django.conf import settings

    batch_size = batch_size or settings.EVIDENCE["VERIFY_BATCH"]
    last_id = Evidence.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    after, run = 0, Verification()
    while after < last_id:
        batch = list(
            Evidence.objects.stored()
            .filter(pk__gt=after, pk__lte=last_id)
            .order_by("pk")
            .only("pk", "stored_name", "sha256", "size")[:batch_size]
        )
        if not batch:
            break
        for evidence in batch:
            if evidence_verify(evidence=evidence) in FAILED:
                run.failed.append(evidence.pk)
            run.checked += 1
        after = batch[-1].pk
    return run
