"""Queries through the gateway: submit, run (in the worker), read results, purge, sweep.

Every attempt leaves exactly one ``DataQuery`` and its ledger events. A run is fenced by its
claim token (``attempts``): the claim, a takeover after a crash and the completion are each a
conditional UPDATE, so two runs of one query can never both record a completion.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

import audit
from accounts.models import User
from audit.actions import Action
from userdata.catalogue import CATEGORIES

from .. import gateway
from ..errors import QueryDenied, ResultsUnavailable
from ..models import CaseStatus, DataQuery, Grant, GrantStatus, ProtectedSubject, QueryResult, QueryStatus
from ..models.grant import db_now
from . import oversight
from .locks import retry_on_conflict

logger = logging.getLogger(__name__)

MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 100


# --- submit ------------------------------------------------------------------------------


def _clean_subjects(grant: Grant, subjects: list | None) -> tuple[int, ...]:
    if subjects is None or len(subjects) == 0:
        return tuple(grant.subjects)
    try:
        cleaned = tuple(dict.fromkeys(int(str(subject), 10) for subject in subjects))
    except ValueError:
        raise ValidationError({"subjects": "Subjects are account ids (whole numbers)."}) from None
    return cleaned


def _clean(
    *, grant: Grant, category: str, subjects, window_start, window_end, page_size
) -> tuple[gateway.QueryParameters, int]:
    """Bad input is a field error and records nothing; scope questions are left to ``refusal``."""
    errors: dict[str, str] = {}
    if category not in CATEGORIES:
        errors["category"] = f"Unknown data category: {category!r}."
    for name, value in (("window_start", window_start), ("window_end", window_end)):
        if value is not None and not isinstance(value, date):
            errors[name] = "Enter a valid date (YYYY-MM-DD)."
    start = window_start if window_start is not None else grant.window_start
    end = window_end if window_end is not None else grant.window_end
    if not errors and isinstance(start, date) and isinstance(end, date) and start > end:
        errors["window_end"] = "The window must end on or after its start."
    size = DEFAULT_PAGE_SIZE if page_size is None else page_size
    if not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        errors["page_size"] = f"The page size must be between 1 and {MAX_PAGE_SIZE}."
    try:
        subject_ids = _clean_subjects(grant, subjects)
    except ValidationError as error:
        errors.update({key: value[0] for key, value in error.message_dict.items()})
    if errors:
        raise ValidationError(errors)
    return gateway.QueryParameters(category, subject_ids, start, end), size


def _new_query(*, actor: User, grant: Grant, parameters: gateway.QueryParameters, page_size: int) -> DataQuery:
    return DataQuery(
        grant=grant,
        user=actor,
        category=parameters.category,
        subjects=list(parameters.subjects),
        window_start=parameters.window_start,
        window_end=parameters.window_end,
        page_size=page_size,
    )


def _record_denial(*, actor: User, grant: Grant, query: DataQuery, reason: str, stage: str) -> None:
    audit.record(
        action=Action.QUERY_DENIED,
        actor=actor,
        target=query,
        case_reference=grant.case.reference,
        details={"grant": grant.pk, "reason": reason, "stage": stage, "parameters": query.parameters()},
    )


@retry_on_conflict
def query_submit(
    *,
    actor: User,
    grant: Grant,
    category: str,
    subjects: list[int] | None = None,
    window_start: date | None = None,
    window_end: date | None = None,
    page_size: int | None = None,
    enqueue: bool = True,
) -> DataQuery:
    """Ask for a query under ``grant``: refused attempts are recorded and raise ``QueryDenied``.

    Subjects default to all of the grant's, the window to all of it. Malformed input raises
    ``ValidationError`` and records nothing. Authorisation uses the database clock, so a grant
    that ran out a second ago is refused whether or not the expiry task has run. An accepted
    query is saved queued with ``query.requested`` and ``run_query`` is enqueued on commit;
    if the broker is unreachable it stays queued for the sweeper (``query.enqueue_failed``).
    """
    parameters, size = _clean(
        grant=grant,
        category=category,
        subjects=subjects,
        window_start=window_start,
        window_end=window_end,
        page_size=page_size,
    )
    with transaction.atomic():
        grant = Grant.objects.select_related("case").get(pk=grant.pk)
        query = _new_query(actor=actor, grant=grant, parameters=parameters, page_size=size)
        reason = gateway.refusal(grant=grant, user=actor, parameters=parameters, at=db_now())
        if reason:
            query.status = QueryStatus.DENIED
            query.denial_reason = reason
            query.finished_at = db_now()
            query.save()
            _record_denial(actor=actor, grant=grant, query=query, reason=reason, stage="submit")
            oversight.scan_soon()  # repeated denials
        else:
            query.save()
            audit.record(
                action=Action.QUERY_REQUESTED,
                actor=actor,
                target=query,
                case_reference=grant.case.reference,
                details={"grant": grant.pk, "parameters": query.parameters()},
            )
            if enqueue:
                transaction.on_commit(lambda: enqueue_run(query))
    if reason:
        raise QueryDenied(query)
    return query


def enqueue_run(query: DataQuery, *, takeover: int | None = None) -> bool:
    """Ring the doorbell for ``query``. The database is the record: a broker error only logs.

    ``retry=False`` so that an unreachable broker fails fast instead of holding the request.
    """
    from ..tasks import run_query

    kwargs = {"takeover": takeover} if takeover is not None else {}
    try:
        run_query.apply_async(args=[query.pk], kwargs=kwargs, retry=False)
    except Exception:
        logger.warning("could not enqueue query %s; the sweeper will re-enqueue it", query.pk, exc_info=True)
        query.enqueue_failed = True
        return False
    query.enqueue_failed = False
    return True


# --- run ---------------------------------------------------------------------------------


class _Superseded(Exception):
    """Another run took the query over; this run must record nothing."""


def _claim(query_id: int, takeover: int | None) -> int | None:
    """Take the query for this run; returns the claim token, or None if it is not ours.

    A queued query is claimed once. A running one only with ``takeover`` equal to the token
    the sweeper saw when it judged the earlier run dead.
    """
    if takeover is None:
        claimed = DataQuery.objects.filter(pk=query_id, status=QueryStatus.QUEUED).update(
            status=QueryStatus.RUNNING, attempts=F("attempts") + 1, started_at=db_now()
        )
    else:
        claimed = DataQuery.objects.filter(pk=query_id, status=QueryStatus.RUNNING, attempts=takeover).update(
            attempts=F("attempts") + 1, started_at=db_now()
        )
    if not claimed:
        return None
    return DataQuery.objects.values_list("attempts", flat=True).get(pk=query_id)


def _finish(query: DataQuery, token: int, **changes) -> bool:
    return bool(
        DataQuery.objects.filter(pk=query.pk, status=QueryStatus.RUNNING, attempts=token).update(
            finished_at=Now(), **changes
        )
    )


def _fail(query: DataQuery, token: int, error: str) -> None:
    """End the run failed. The failure is put on the ledger if the ledger takes it."""
    try:
        with transaction.atomic():
            if _finish(query, token, status=QueryStatus.FAILED, error=error[:2000]):
                audit.record(
                    action=Action.QUERY_FAILED,
                    actor=query.user,
                    target=query,
                    case_reference=query.grant.case.reference,
                    details={"error": error[:500], "attempt": token},
                )
    except Exception:
        logger.exception("could not record the failure of query %s on the ledger", query.pk)
        _finish(query, token, status=QueryStatus.FAILED, error=error[:2000])


def _deny_at_run(query: DataQuery, token: int, reason: str) -> None:
    with transaction.atomic():
        if _finish(query, token, status=QueryStatus.DENIED, denial_reason=reason):
            _record_denial(actor=query.user, grant=query.grant, query=query, reason=reason, stage="run")


def _parameters_of(query: DataQuery) -> gateway.QueryParameters:
    return gateway.QueryParameters(query.category, tuple(query.subjects), query.window_start, query.window_end)


def _record_start(query: DataQuery, token: int) -> None:
    with transaction.atomic():
        audit.record(
            action=Action.QUERY_STARTED,
            actor=query.user,
            target=query,
            case_reference=query.grant.case.reference,
            details={"attempt": token},
        )


def rows_by_subject(extract: gateway.Extract) -> dict[str, int]:
    """Rows per subject account, for the scope-diff report: counts, never the rows themselves."""
    counts = Counter(str(owner) for owner in extract.owners)
    return dict(sorted(counts.items()))


def _store(query: DataQuery, token: int, extract: gateway.Extract) -> None:
    """Completion and result in one transaction: the result exists only if completion is recorded."""
    digest = gateway.result_digest(extract.columns, extract.rows)
    per_subject = rows_by_subject(extract)
    with transaction.atomic():
        if not _finish(
            query,
            token,
            status=QueryStatus.SUCCEEDED,
            row_count=len(extract.rows),
            rows_by_subject=per_subject,
            truncated=extract.truncated,
            digest=digest,
        ):
            raise _Superseded
        QueryResult.objects.create(query=query, columns=extract.columns, rows=extract.rows)
        audit.record(
            action=Action.QUERY_COMPLETED,
            actor=query.user,
            target=query,
            case_reference=query.grant.case.reference,
            details={
                "rows": len(extract.rows),
                "truncated": extract.truncated,
                "row_cap": settings.CUSTOS["QUERY_ROW_CAP"],
                "digest": digest,
                "attempt": token,
                "rows_by_subject": per_subject,
            },
        )
        # Off-hours queries and any tripwire the run recorded reach oversight within seconds.
        oversight.scan_soon()


def _record_tripwire(query: DataQuery, extract: gateway.Extract) -> None:
    """Rows about accounts the query did not name were withheld: put it on the ledger for oversight.

    Recorded before the rest of the result is stored; if the ledger refuses it, the query
    fails and nothing is released.
    """
    protected = ProtectedSubject.objects.in_force().filter(account_id__in=extract.dropped_owners)
    protected_accounts = sorted(protected.values_list("account_id", flat=True))
    logger.error(
        "query %s: tripwire withheld %s rows about accounts outside the grant", query.pk, extract.dropped_rows
    )
    with transaction.atomic():
        audit.record(
            action=Action.QUERY_TRIPWIRE,
            actor=query.user,
            target=query,
            case_reference=query.grant.case.reference,
            details={
                "dropped_rows": extract.dropped_rows,
                "protected_accounts": protected_accounts,
                "other_accounts": len(extract.dropped_owners) - len(protected_accounts),
                "category": query.category,
                "grant_id": query.grant_id,
            },
        )


def query_run(*, query_id: int, takeover: int | None = None) -> DataQuery | None:
    """Run a queued query (the worker's side); safe to call twice and after a crash.

    Claim with a conditional UPDATE, re-check the grant by the database clock (revoked or
    expired while waiting: denied now), record ``query.started`` durably, read, then store the
    result and record the completion together. A ledger failure at either step reads or
    releases nothing and ends the query failed. Returns None when the query is not ours.
    """
    token = _claim(query_id, takeover)
    if token is None:
        return None
    query = DataQuery.objects.select_related("grant__case", "user").get(pk=query_id)
    reason = gateway.refusal(grant=query.grant, user=query.user, parameters=_parameters_of(query), at=db_now())
    if reason:
        _deny_at_run(query, token, reason)
    else:
        _execute(query, token)
    query.refresh_from_db()
    return query


def _execute(query: DataQuery, token: int) -> None:
    try:
        _record_start(query, token)
    except Exception as error:
        logger.exception("query %s: the start could not be recorded; nothing read", query.pk)
        _fail(query, token, f"The start could not be recorded on the ledger: {error}")
        return
    try:
        extract = gateway.read_rows(grant=query.grant, parameters=_parameters_of(query))
        if extract.dropped_rows:
            _record_tripwire(query, extract)
        _store(query, token, extract)
    except _Superseded:
        logger.warning("query %s: taken over by a later run; this run records nothing", query.pk)
    except Exception as error:
        logger.exception("query %s failed", query.pk)
        _fail(query, token, f"{type(error).__name__}: {error}")


def query_execute_now(*, actor: User, grant: Grant, category: str, **parameters) -> DataQuery:
    """The gateway's synchronous core, in-process: authorise + record + read + record.

    For benchmarks and the command line; the web path goes through the queue.
    """
    query = query_submit(actor=actor, grant=grant, category=category, enqueue=False, **parameters)
    return query_run(query_id=query.pk)


# --- sweeper -----------------------------------------------------------------------------


def stale_after() -> timedelta:
    """A run older than the hard task time limit is dead: nothing can still be running it."""
    return timedelta(seconds=settings.CUSTOS.get("QUERY_STALE_SECONDS", settings.CELERY_TASK_TIME_LIMIT + 60))


@dataclass
class Sweep:
    queued: int = 0
    taken_over: int = 0


def requeue_stale_queries(*, queued_after: timedelta = timedelta(seconds=30), running_after: timedelta | None = None):
    """Re-enqueue queries left queued (the broker was down) and runs whose worker died.

    Safe to overlap with normal delivery: the claim lets only one run through. A dead run is
    handed over with its claim token, so if it was in fact alive its completion is refused.
    """
    running_after = stale_after() if running_after is None else running_after
    sweep = Sweep()
    # requested_at is stamped by the app clock, started_at by the database clock.
    waiting = DataQuery.objects.filter(status=QueryStatus.QUEUED, requested_at__lte=timezone.now() - queued_after)
    for query in waiting:
        sweep.queued += enqueue_run(query)
    stale = DataQuery.objects.filter(status=QueryStatus.RUNNING, started_at__lte=db_now() - running_after)
    for query in stale:
        sweep.taken_over += enqueue_run(query, takeover=query.attempts)
    return sweep


# --- results -----------------------------------------------------------------------------


def grant_ended_at(grant: Grant) -> datetime | None:
    """When the grant ended: revoked, expired (``expires_at``, whatever the expiry task did) or
    its case closed, whichever came first."""
    ends = [grant.expires_at]
    if grant.revoked_at is not None:
        ends.append(grant.revoked_at)
    if grant.case.is_closed and grant.case.closed_at:
        ends.append(grant.case.closed_at)
    return min(ends)


def results_problem(user: User, query: DataQuery, at: datetime | None = None) -> str | None:
    """Why ``user`` may not read ``query``'s rows now, or None.

    Only grantees, and only while the grant is in force by the database clock (invariant 1):
    once it expired, was revoked or its case closed (or while the case is on hold), the rows
    are no longer readable through the query, whatever the expiry task did. They stay stored,
    unreadable, until ``purge_expired_results`` deletes them; the record (row count, digest)
    stays for auditors. No role opens them.
    """
    grant = query.grant
    if not user.is_active or not grant.grantees.filter(pk=user.pk).exists():
        return "Only the grant's grantees see query results."
    if query.status != QueryStatus.SUCCEEDED:
        return "This query has no results."
    if grant.revoked_at is not None or grant.status == GrantStatus.REVOKED:
        return "The grant was revoked; its results are no longer readable."
    if grant.case.is_closed:
        return "The case is closed; the results of its grants are no longer readable."
    if not grant.is_usable_at(at or db_now()):
        if grant.case.is_on_hold:
            return "The case is on hold; the results of its grants are readable again when it resumes."
        return "The grant has ended; its results are no longer readable."
    if not QueryResult.objects.filter(query=query).exists():
        return "The results are no longer stored."
    return None


def _check_results(actor: User, query: DataQuery) -> None:
    problem = results_problem(actor, query)
    if problem:
        raise ResultsUnavailable(problem)


def results_view(*, actor: User, query: DataQuery, page: int) -> QueryResult:
    """Record a grantee viewing a page of results, and hand the stored result over."""
    _check_results(actor, query)
    with transaction.atomic():
        audit.record(
            action=Action.RESULTS_VIEWED,
            actor=actor,
            target=query,
            case_reference=query.grant.case.reference,
            details={"page": page, "digest": query.digest},
        )
    return QueryResult.objects.get(query=query)


def results_download(*, actor: User, query: DataQuery) -> QueryResult:
    """Record a grantee downloading the results as CSV, and hand the stored result over."""
    _check_results(actor, query)
    with transaction.atomic():
        audit.record(
            action=Action.RESULTS_DOWNLOADED,
            actor=actor,
            target=query,
            case_reference=query.grant.case.reference,
            details={"format": "csv", "rows": query.row_count, "digest": query.digest},
        )
    return QueryResult.objects.get(query=query)


def purge_expired_results(*, now: datetime | None = None) -> int:
    """Delete the stored rows of queries whose grant ended (expired, revoked, case closed) more
    than ``RESULT_RETENTION_DAYS`` ago, by the database clock. Returns how many were purged.

    The query record (row count, rows per subject, digest) stays. One ``results.purged`` event
    per query, in the transaction that deletes the rows: the delete comes first (the row lock
    before the ledger head, the documented order), and a run that finds the rows already gone
    (another run got there first) records nothing.
    """
    now = now or db_now()
    cutoff = now - timedelta(days=settings.CUSTOS["RESULT_RETENTION_DAYS"])
    ended = (
        Q(query__grant__expires_at__lte=cutoff)
        | Q(query__grant__revoked_at__lte=cutoff)
        | Q(query__grant__case__status=CaseStatus.CLOSED, query__grant__case__closed_at__lte=cutoff)
    )
    purged = 0
    due = QueryResult.objects.filter(ended).select_related("query__grant__case").defer("rows", "columns")
    for result in due.order_by("pk"):
        with transaction.atomic():
            deleted, _ = QueryResult.objects.filter(pk=result.pk).delete()
            if not deleted:
                continue
            query = result.query
            audit.record(
                action=Action.RESULTS_PURGED,
                target=query,
                case_reference=query.grant.case.reference,
                details={
                    "grant": query.grant_id,
                    "rows": query.row_count,
                    "digest": query.digest,
                    "retention_days": settings.CUSTOS["RESULT_RETENTION_DAYS"],
                },
            )
        purged += 1
    return purged
