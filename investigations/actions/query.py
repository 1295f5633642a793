"""Queries through the gateway: submit, run (in the worker), read results, purge, sweep.

Every attempt leaves exactly one ``DataQuery`` and its ledger events, with two commits: the
submission (the attempt and ``query.requested``, durable before any row is read) and the run
(claim, re-check, read, store, ``query.completed``, all in one transaction). A run holds the
query's row lock until it commits, and its completion is a conditional UPDATE, so two runs
of one query can never both record a completion, and a run that dies leaves nothing behind.
"""

from __future__ import annotations

import copy
import logging
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, DatabaseError, InterfaceError, OperationalError, connections, transaction
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Now
from django.utils import timezone

import audit
from accounts.models import User
from audit.events import Action
from userdata.catalogue import CATEGORIES

from .. import enqueue, gateway
from ..errors import QueryDenied, ResultsUnavailable
from ..models import CaseStatus, DataQuery, Grant, GrantStatus, ProtectedSubject, QueryResult, QueryStatus
from ..models.grant import db_now
from . import oversight, query_sql
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
    query is saved queued with ``query.requested`` (the durable record of the attempt, committed
    before any row is read) and ``run_query`` is enqueued on commit; if the broker is
    unreachable it stays queued for the sweeper (``query.enqueue_failed``).

    One transaction. On PostgreSQL, one statement inside it: the attempt's INSERT with its
    ``query.requested`` and a fresh read of the grant's state and the clock; the event is written
    before the refusal is decided, so a refused attempt rolls that statement back and is decided
    again, and recorded, the other way (``_submit(optimistic=False)``: the fresh read, the INSERT,
    the refusal, then the denial or ``query.requested``).
    """
    parameters, size = _clean(
        grant=grant,
        category=category,
        subjects=subjects,
        window_start=window_start,
        window_end=window_end,
        page_size=page_size,
    )
    arguments = {"actor": actor, "grant": grant, "parameters": parameters, "page_size": size, "enqueue": enqueue}
    if query_sql.fused():
        try:
            return _submit(**arguments, optimistic=True)
        except _RefusedAfterAll:
            pass  # rolled back: no attempt, no event; decide again, recording the refusal this time
    return _submit(**arguments, optimistic=False)


class _RefusedAfterAll(Exception):
    """The optimistic submission wrote ``query.requested`` and then found the attempt refused."""


def _submit(
    *,
    actor: User,
    grant: Grant,
    parameters: gateway.QueryParameters,
    page_size: int,
    enqueue: bool,
    optimistic: bool,
) -> DataQuery:
    """``query_submit``'s transaction. ``optimistic`` (PostgreSQL): ``query.requested`` goes in with
    the attempt, and a refusal raises ``_RefusedAfterAll`` to roll both back."""
    with transaction.atomic():
        query = _new_query(actor=actor, grant=grant, parameters=parameters, page_size=page_size)
        requested = _requested(query, grant, actor)
        if optimistic:
            fresh = copy.copy(grant)  # the caller's instance keeps what it had
            is_grantee, now = query_sql.insert_checked(query, fresh, actor, requested=requested)
        else:
            fresh, is_grantee, now = _save_checked(query, grant, actor)
        query.grant = fresh
        reason = gateway.refusal(grant=fresh, user=actor, parameters=parameters, at=now, is_grantee=is_grantee)
        if reason and optimistic:
            raise _RefusedAfterAll
        if reason:
            query.status, query.denial_reason, query.finished_at = QueryStatus.DENIED, reason, now
            DataQuery.objects.filter(pk=query.pk).update(status=query.status, denial_reason=reason, finished_at=now)
            _record_denial(actor=actor, grant=fresh, query=query, reason=reason, stage="submit")
            oversight.scan_soon()  # repeated denials
        else:
            if not optimistic:
                audit.record(**requested)
            if enqueue:
                transaction.on_commit(lambda: enqueue_run(query))
    if reason:
        raise QueryDenied(query)
    return query


def _requested(query: DataQuery, grant: Grant, actor: User) -> dict:
    """``query.requested``'s arguments for ``audit.record`` (the case's reference never changes)."""
    return {
        "action": Action.QUERY_REQUESTED,
        "actor": actor,
        "target": query,
        "case_reference": grant.case.reference,
        "details": {"grant": grant.pk, "parameters": query.parameters()},
    }


def _save_checked(query: DataQuery, grant: Grant, actor: User) -> tuple[Grant, bool, datetime]:
    """Save the attempt and read the grant as it is now: (grant, actor is a grantee, DB clock)."""
    fresh = (
        Grant.objects.select_related("case")
        .annotate(is_grantee=Exists(Grant.grantees.through.objects.filter(grant_id=OuterRef("pk"), user_id=actor.pk)))
        .annotate(clock=Now())
        .get(pk=grant.pk)
    )
    query.save()
    return fresh, fresh.is_grantee, fresh.clock


def enqueue_run(query: DataQuery) -> bool:
    """Ring the doorbell for ``query``. The database is the record: a broker error only logs."""
    try:
        enqueue.send(enqueue.RUN_QUERY, query.pk)
    except Exception:
        logger.warning("could not enqueue query %s; the sweeper will re-enqueue it", query.pk, exc_info=True)
        query.enqueue_failed = True
        return False
    query.enqueue_failed = False
    return True


# --- run ---------------------------------------------------------------------------------


class RunInProgress(Exception):
    """Another run holds the query (its transaction is open): ask again in a moment."""


class _Superseded(Exception):
    """Another run completed the query first; this run records nothing."""


def _claim(query_id: int) -> DataQuery | None:
    """Lock a waiting query for this run, with its grant, case, user, grantee check and DB clock.

    One statement. ``SKIP LOCKED``: a query another run holds is not waited for (the clock read
    here would go stale while waiting); the caller tells it from a finished one. On PostgreSQL
    the statement is ``query_sql.claim``'s, the same SELECT written out once.
    """
    if query_sql.fused():
        return query_sql.claim(query_id)
    grantee = Grant.grantees.through.objects.filter(grant_id=OuterRef("grant_id"), user_id=OuterRef("user_id"))
    return (
        DataQuery.objects.select_related("grant__case", "user")
        .select_for_update(of=("self",), no_key=True, skip_locked=True)
        .filter(pk=query_id, status__in=query_sql.WAITING)
        .annotate(is_grantee=Exists(grantee), clock=Now())
        .first()
    )


def _unclaimed(query_id: int) -> None:
    """The claim found nothing: gone or finished (None), or held by a live run (raise)."""
    if DataQuery.objects.filter(pk=query_id, status__in=query_sql.WAITING).exists():
        raise RunInProgress(query_id)


def query_run(*, query_id: int) -> DataQuery | None:
    """Run a waiting query (the worker's side): one transaction, one commit; safe to call twice.

    In one transaction: claim the query (a row lock, held until the commit), re-check the grant
    by the database clock (revoked or expired while waiting: denied now), read, then store the
    result and record ``query.completed``. Nothing is visible before the commit, so a run that
    dies at any point (worker killed, database gone) leaves the query waiting, claimable again
    at once, with nothing stored or shown; the attempt itself was committed at submission.

    A database error re-raises for the task to retry (the attempt is noted, best effort, so the
    user sees the query retrying); any other error ends the query failed. Returns None when the
    query is gone or finished; raises ``RunInProgress`` while another run holds it.
    """
    extract = None
    try:
        with transaction.atomic():
            query = _claim(query_id)
            if query is None:
                return _unclaimed(query_id)
            parameters = _parameters_of(query)
            reason = gateway.refusal(
                grant=query.grant, user=query.user, parameters=parameters, at=query.clock, is_grantee=query.is_grantee
            )
            if reason:
                _deny_at_run(query, reason)
                return query
            extract = gateway.read_rows(grant=query.grant, parameters=parameters)
            if extract.dropped_rows:
                _record_tripwire(query, extract)
            _complete(query, extract)
    except RunInProgress:
        raise
    except _Superseded:
        logger.warning("query %s: completed by another run; this run records nothing", query_id)
        return None
    except (OperationalError, InterfaceError):
        logger.warning("query %s: the database failed mid-run; nothing was stored, it will be retried", query_id)
        query_note_retry(query_id=query_id)
        raise
    except Exception as error:
        logger.exception("query %s failed", query_id)
        return _fail(query_id, f"{type(error).__name__}: {error}", tripwire=extract)
    return query


def _deny_at_run(query: DataQuery, reason: str) -> None:
    query.status, query.denial_reason, query.finished_at = QueryStatus.DENIED, reason, query.clock
    query.attempts += 1
    DataQuery.objects.filter(pk=query.pk).update(
        status=query.status, denial_reason=reason, finished_at=Now(), started_at=query.clock, attempts=query.attempts
    )
    _record_denial(actor=query.user, grant=query.grant, query=query, reason=reason, stage="run")


def _complete(query: DataQuery, extract: gateway.Extract) -> None:
    """Store the result and record the completion: the rows exist only if the completion does."""
    query.status, query.row_count, query.truncated = QueryStatus.SUCCEEDED, len(extract.rows), extract.truncated
    query.digest = gateway.result_digest(extract.columns, extract.rows)
    query.rows_by_subject = rows_by_subject(extract)
    query.started_at = query.clock
    query.attempts += 1
    event = {
        "action": Action.QUERY_COMPLETED,
        "actor": query.user,
        "target": query,
        "case_reference": query.grant.case.reference,
        "details": {
            "rows": query.row_count,
            "truncated": extract.truncated,
            "row_cap": settings.CUSTOS["QUERY_ROW_CAP"],
            "digest": query.digest,
            "attempt": query.attempts,
            "rows_by_subject": query.rows_by_subject,
        },
    }
    if query_sql.fused():  # the completion, the rows and the event in one statement
        query.finished_at = query_sql.complete(
            query, columns=extract.columns, rows=extract.rows, started_at=query.clock, event=event
        )
        if query.finished_at is None:
            raise _Superseded
    else:
        changes = {name: getattr(query, name) for name in ("status", "row_count", "truncated", "digest")}
        updated = DataQuery.objects.filter(pk=query.pk, status__in=query_sql.WAITING).update(
            **changes,
            rows_by_subject=query.rows_by_subject,
            started_at=query.clock,
            attempts=F("attempts") + 1,
            finished_at=Now(),
        )
        if not updated:
            raise _Superseded
        QueryResult.objects.create(query=query, columns=extract.columns, rows=extract.rows)
        audit.record(**event)
    # Off-hours queries and any tripwire the run recorded reach oversight within seconds.
    oversight.scan_soon()


def _fail(query_id: int, error: str, *, tripwire: gateway.Extract | None = None) -> DataQuery | None:
    """End the query failed, in a transaction of its own; the failure goes on the ledger if the
    ledger takes it (with the tripwire, if the read withheld rows), and the query is failed either way."""
    query = DataQuery.objects.select_related("grant__case", "user").filter(pk=query_id).first()
    if query is None:
        return None
    changes = {"status": QueryStatus.FAILED, "error": error[:2000], "finished_at": Now(), "attempts": F("attempts") + 1}
    try:
        with transaction.atomic():
            if DataQuery.objects.filter(pk=query_id, status__in=query_sql.WAITING).update(**changes):
                if tripwire is not None and tripwire.dropped_rows:
                    _record_tripwire(query, tripwire)
                audit.record(
                    action=Action.QUERY_FAILED,
                    actor=query.user,
                    target=query,
                    case_reference=query.grant.case.reference,
                    details={"error": error[:500], "attempt": query.attempts + 1},
                )
    except Exception:
        logger.exception("could not record the failure of query %s on the ledger", query_id)
        DataQuery.objects.filter(pk=query_id, status__in=query_sql.WAITING).update(**changes)
    query.refresh_from_db()
    return query


def query_note_retry(*, query_id: int) -> bool:
    """Note that a run of ``query_id`` was interrupted and will be tried again (best effort).

    Not a state change of the record (no ledger event: the run committed nothing); it counts
    the attempt so the query shows as retrying rather than queued. Called by a run that met a
    database error, by the task on a redelivery (its worker died) and by the sweeper.
    """
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        if not connection.in_atomic_block:
            connection.close_if_unusable_or_obsolete()
        return bool(
            DataQuery.objects.filter(pk=query_id, status__in=query_sql.WAITING).update(attempts=F("attempts") + 1)
        )
    except DatabaseError:
        logger.warning("could not note the retry of query %s (the database is unavailable)", query_id)
        return False


def _parameters_of(query: DataQuery) -> gateway.QueryParameters:
    return gateway.QueryParameters(query.category, tuple(query.subjects), query.window_start, query.window_end)


def rows_by_subject(extract: gateway.Extract) -> dict[str, int]:
    """Rows per subject account, for the scope-diff report: counts, never the rows themselves."""
    counts = Counter(str(owner) for owner in extract.owners)
    return dict(sorted(counts.items()))


def _record_tripwire(query: DataQuery, extract: gateway.Extract) -> None:
    """Rows about accounts the query did not name were withheld: put it on the ledger for oversight.

    Recorded in the run's transaction, with the completion (or with the failure, if the run
    fails): if the ledger refuses it, nothing is released.
    """
    protected = ProtectedSubject.objects.in_force().filter(account_id__in=extract.dropped_owners)
    protected_accounts = sorted(protected.values_list("account_id", flat=True))
    logger.error("query %s: tripwire withheld %s rows about accounts outside the grant", query.pk, extract.dropped_rows)
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


def query_execute_now(*, actor: User, grant: Grant, category: str, **parameters) -> DataQuery:
    """The gateway's synchronous core, in-process: submit (one commit), then run (one commit).

    For benchmarks and the command line; the web path goes through the queue.
    """
    query = query_submit(actor=actor, grant=grant, category=category, enqueue=False, **parameters)
    return query_run(query_id=query.pk)


# --- sweeper -----------------------------------------------------------------------------


@dataclass
class Sweep:
    queued: int = 0


def requeue_stale_queries(*, queued_after: timedelta = timedelta(seconds=30)) -> Sweep:
    """Re-enqueue queries still waiting after ``queued_after`` that no run holds.

    Their doorbell was lost (the broker was down at submission) or their run died before its
    commit; either way nothing was stored, and they are noted as retrying. A query a live run
    holds is locked and skipped (``SKIP LOCKED``), so the sweep never duplicates live work,
    whatever the run's length; a duplicate message would find the query held or finished anyway.
    """
    sweep = Sweep()
    # requested_at is stamped by the app clock.
    with transaction.atomic():
        waiting = list(
            DataQuery.objects.filter(status__in=query_sql.WAITING, requested_at__lte=timezone.now() - queued_after)
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", flat=True)[:1000]
        )
        DataQuery.objects.filter(pk__in=waiting).update(attempts=F("attempts") + 1)
    for query in DataQuery.objects.filter(pk__in=waiting).only("pk"):
        sweep.queued += enqueue_run(query)
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
