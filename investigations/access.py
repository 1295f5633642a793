"""Who may see or do what: the one chokepoint.

Every view, API view and action gets objects through these functions. An object the user
may not see raises ``Http404`` (indistinguishable from one that does not exist); an object
they may see but not act on raises ``PermissionDenied`` with a message that says why.

django-guardian holds the object permissions, in direct foreign-key tables. They are read
here with explicit filters (``_perm_ids``, ``object_perms``) rather than guardian's shortcuts, because those
default to letting superusers and global model permissions through
(``with_superuser=True, accept_global_perms=True``): in Custos, superuser status and global
permissions open nothing. Inactive users hold nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Generic, TypeVar

from django.core.exceptions import PermissionDenied
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    Model,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce, Now
from django.http import Http404

import audit
from accounts.models import User
from audit.access import is_auditor
from audit.events import Action
from config.listing import COUNT_LIMIT

from .errors import InvalidTransition
from .gateway import DIRECT_KINDS
from .models import (
    ID_MAX,
    Alert,
    Case,
    CaseGroupObjectPermission,
    CaseMember,
    CaseMembership,
    CaseNote,
    CaseReport,
    CaseStatus,
    CaseTask,
    CaseTemplate,
    CaseUserObjectPermission,
    DataPullRequest,
    DataQuery,
    Decision,
    Evidence,
    EvidenceKind,
    Grant,
    GrantGroupObjectPermission,
    GrantReport,
    GrantStatus,
    GrantUserObjectPermission,
    Involvement,
    ProtectedSubject,
    RegistryProposal,
    ReportAudience,
    RequestStatus,
    Tag,
)
from .models.case import CaseQuerySet
from .models.evidence import EvidenceQuerySet
from .models.grant import GrantQuerySet
from .models.protected import ProtectedSubjectQuerySet
from .models.request import APPROVING_OUTCOMES, EDITABLE_STATUSES
from .models.task import CaseTaskQuerySet

_M = TypeVar("_M", bound=Model)

CASE_PERMS = ("view_case", "change_case", "manage_team", "close_case", "add_note", "file_request")
LEAD_PERMS = CASE_PERMS
MEMBER_PERMS = ("view_case", "add_note", "file_request")
# What the team keeps once a case is closed: it stays readable, and nothing more.
CLOSED_CASE_PERMS = ("view_case",)
# The team's right to write in the case file: notes and tasks.
CONTRIBUTE_PERM = "add_note"
TASKS_DENIED = "Only the case team works its tasks."
NOTE_EDIT_DENIED = "Only the note's author, while on the case team, may edit it."
EVIDENCE_DENIED = "Only the case team adds evidence."


def _is_real(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _perm_ids(user_model, group_model, user: User, codename: str) -> QuerySet:
    """Ids of the objects on which ``user`` holds ``codename``, directly or through a group.

    A list filters ``pk__in=`` these ids (a UNION), not ``Exists(direct) | Exists(via_group)``:
    the database then starts from the user's permission rows and joins the few objects they
    name, instead of testing every object in the table (``visible_cases`` in ``bench/``).
    """
    direct = user_model.objects.filter(user=user, permission__codename=codename)
    via_group = group_model.objects.filter(group__user=user, permission__codename=codename)
    return direct.order_by().values("content_object_id").union(via_group.order_by().values("content_object_id"))


_PERMISSION_TABLES = {
    Case: (CaseUserObjectPermission, CaseGroupObjectPermission),
    Grant: (GrantUserObjectPermission, GrantGroupObjectPermission),
}


def object_perms(user: User, obj: Case | Grant) -> set[str]:
    """The codenames ``user`` holds on the case or grant ``obj``, directly or through a group,
    fresh from the database (no cache)."""
    if not _is_real(user):
        return set()
    # Each table's ``content_object`` is a direct foreign key declared on the concrete subclass
    # (guardian's direct-FK tables), which the type of the dict's values does not show.
    user_model, group_model = _PERMISSION_TABLES[type(obj)]
    direct = user_model.objects.filter(content_object=obj, user=user).values_list("permission__codename")  # type: ignore[misc]
    via_group = group_model.objects.filter(content_object=obj, group__user=user).values_list(  # type: ignore[misc]
        "permission__codename"
    )
    return {codename for (codename,) in direct.order_by().union(via_group.order_by())}


# --- cases -------------------------------------------------------------------------------


def _reviewer_case_ids(user: User) -> list[QuerySet]:
    """Ids of the cases a legal reviewer sees besides their own: those awaiting approval, those
    with a request awaiting legal, those whose case or requests they decided, and those whose
    legal hold a legal reviewer proposed lifting (a second one confirms it)."""
    # No ORDER BY inside a UNION's parts (SQLite refuses it): order_by() drops the models' default.
    return [
        Case.objects.pending_approval().order_by().values("pk"),
        DataPullRequest.objects.filter(status=RequestStatus.SUBMITTED).order_by().values("case_id"),
        Case.objects.filter(decided_by=user).order_by().values("pk"),
        Decision.objects.filter(reviewer=user).order_by().values("request__case_id"),
        Case.objects.filter(legal_hold=True, legal_hold_lift_by__isnull=False).order_by().values("pk"),
    ]


def cases_visible_to(user: User) -> CaseQuerySet:
    """The only way lists get cases.

    One UNION of the ids the user may see (see ``_perm_ids``), so a page costs time in
    proportion to the cases the user sees, not to all cases.
    """
    if not _is_real(user):
        return Case.objects.none()
    visible = _perm_ids(CaseUserObjectPermission, CaseGroupObjectPermission, user, "view_case")
    if user.is_reviewer:
        visible = visible.union(*_reviewer_case_ids(user))
    return Case.objects.filter(pk__in=visible)


# From this many cases seen through their own permission rows, a list walks the cases in its
# order (an index on the newest first) and tests each one, instead of sorting every visible case.
DENSE_VIEWER = 1000


Listed = TypeVar("Listed", bound=QuerySet)


@dataclass(frozen=True)
class Listing(Generic[Listed]):
    """What a list page reads of the rows a user may list: ``rows`` in the shape that pages
    fastest, ``counted`` the same rows in the shape that counts them fastest."""

    rows: Listed
    counted: Listed


def cases_listed_for(user: User) -> CaseQuerySet:
    """``cases_visible_to(user)``, the same rows, in the shape that lists them fastest.

    The UNION of ``cases_visible_to`` makes the database read every visible case before it can
    sort and keep a page: right for a viewer of a few cases, but a page then costs in
    proportion to the cases seen. A viewer who holds ``view_case`` directly on at least
    ``DENSE_VIEWER`` cases (one bounded count over their permission rows decides) gets the test
    per case instead (``Exists`` on their permission rows, directly or through a group, or the
    reviewer's sets), so PostgreSQL walks the newest-first index and stops after a page.
    Both shapes select exactly the same cases (``tests/investigations/test_visibility.py`` holds
    them equal). SQLite, the embedded default, keeps the UNION.
    """
    return case_listing(user).rows


def case_listing(user: User) -> Listing[CaseQuerySet]:
    """The case list's rows (``cases_listed_for``) and the shape that counts them (see
    ``Held.counts_by_union``): one statement decides both."""
    return _listing(user, "case", cases_visible_to(user), cases_tested_per_row)


def _listing(
    user: User, model: str, visible: Listed, tested_per_row: Callable[[User, int | None], Listed]
) -> Listing[Listed]:
    """``visible`` (the UNION) for rows and count, unless ``user`` holds ``view_<model>`` on
    ``DENSE_VIEWER`` rows or more: then ``tested_per_row`` for the rows, and for the count
    whichever shape reads less (``Held.counts_by_union``). SQLite keeps the UNION."""
    if not _is_real(user) or connection.vendor != "postgresql":
        return Listing(visible, visible)
    held = _held_directly(user, model)
    if held.rows < DENSE_VIEWER:
        return Listing(visible, visible)
    per_row = tested_per_row(user, held.permission)
    return Listing(per_row, visible if held.counts_by_union else per_row)


_HELD_DIRECTLY = """
WITH bound AS (SELECT coalesce((SELECT ceil(sqrt(%s * greatest(reltuples, 0)))::bigint
                                  FROM pg_class WHERE oid = to_regclass(%s)), 0) AS rows)
SELECT p.id,
       (SELECT count(*) FROM (SELECT 1 FROM {table} held
                               WHERE held.user_id = %s AND held.permission_id = p.id
                               LIMIT (SELECT greatest(%s, rows) FROM bound)) first_rows),
       (SELECT rows FROM bound)
  FROM auth_permission p JOIN django_content_type kind ON kind.id = p.content_type_id
 WHERE p.codename = %s AND kind.app_label = 'investigations' AND kind.model = %s
"""
_HELD_TABLES = {"case": "investigations_caseuserobjectpermission", "grant": "investigations_grantuserobjectpermission"}
_LISTED_TABLES = {"case": "investigations_case", "grant": "investigations_grant"}


@dataclass(frozen=True)
class Held:
    """What one bounded statement learns of the ``view_<model>`` rows a user holds directly."""

    permission: int | None  # the permission's id
    rows: int  # how many, counted up to the larger of DENSE_VIEWER and ``union_bound``
    union_bound: int  # sqrt(1,001 x the table's estimated rows)

    @property
    def counts_by_union(self) -> bool:
        """A bounded count (``count_up_to``, at most 1,001 rows) costs about what it reads. The
        UNION reads every one of the viewer's permission rows (P); the per-row test walks the
        table until 1,001 match, about 1,001 x N / P rows of a table of N (or all N). The UNION
        reads less while P x P < 1,001 x N, that is while P is under ``union_bound``: a viewer of
        1,000 cases spread over 110,000 counts 1,000 rows, not 110,000. N is the planner's
        estimate (``pg_class.reltuples``); a table never analysed gives 0, and the per-row test."""
        return self.rows < self.union_bound


def _held_directly(user: User, model: str) -> Held:
    """The id of the ``view_<model>`` permission and how many ``model`` rows (case, grant) ``user``
    holds it on directly, counted up to the larger of ``DENSE_VIEWER`` and the bound that picks
    the count's shape (``Held.counts_by_union``): one statement. The id goes into the per-row
    test as a constant, which lets PostgreSQL estimate the test and pick the walk."""
    with connection.cursor() as cursor:
        cursor.execute(
            _HELD_DIRECTLY.format(table=_HELD_TABLES[model]),
            [COUNT_LIMIT + 1, _LISTED_TABLES[model], user.pk, DENSE_VIEWER, f"view_{model}", model],
        )
        row = cursor.fetchone()
    return Held(*row) if row else Held(None, 0, 0)


def _holding(permission: int | None, codename: str) -> dict[str, int | str]:
    return {"permission_id": permission} if permission is not None else {"permission__codename": codename}


def cases_tested_per_row(user: User, permission: int | None = None) -> CaseQuerySet:
    """``cases_visible_to(user)`` as a test on each case (see ``cases_listed_for``); ``permission``
    is the id of ``view_case`` when the caller has it."""
    if not _is_real(user):
        return Case.objects.none()
    held = _holding(permission, "view_case")
    direct = CaseUserObjectPermission.objects.filter(user=user, content_object=OuterRef("pk"), **held)
    via_group = CaseGroupObjectPermission.objects.filter(group__user=user, content_object=OuterRef("pk"), **held)
    seen = Q(Exists(direct)) | Q(Exists(via_group))
    if user.is_reviewer:
        first, *rest = _reviewer_case_ids(user)
        seen |= Q(pk__in=first.union(*rest))
    return Case.objects.filter(seen)


def tags_visible_to(user: User) -> QuerySet[Tag]:
    """Tags on the cases ``user`` sees (for autocompletion; a tag elsewhere is not shown)."""
    return Tag.objects.filter(cases__in=cases_visible_to(user)).distinct().order_by("name")


def get_case_for(user: User, pk, perm: str | None = None) -> Case:
    """The case ``pk`` if ``user`` may see it (else 404); with ``perm``, 403 unless they hold it.

    The case is tested alone (``case_seen_by``, the same cases as ``cases_visible_to``), not
    found in the UNION of every case the user sees, which for a legal reviewer is their whole
    queue and decision history."""
    case = _get_visible(Case.objects.filter(case_seen_by(user, OuterRef("pk"))), pk)
    if perm is not None and perm not in object_perms(user, case):
        raise record_denial(actor=user, case=case, perm=perm)
    return case


def check_case_reviewer(user: User, case: Case, verb: str) -> None:
    """Refuse, recorded, unless ``user`` may ``verb`` (approve, reject) the case: a legal reviewer
    never involved in it. The page, the API and the action all ask here."""
    if not can_review_case(user, case):
        raise record_denial(
            actor=user,
            case=case,
            perm=f"{verb}_case",
            message=f"Only a legal reviewer never involved in the case may {verb} it.",
        )


LOST_RACE_WINDOW = timedelta(days=1)


def get_case_to_decide(user: User, pk, verb: str) -> Case:
    """The case ``pk`` for a legal reviewer about to ``verb`` (approve, reject) it: as
    ``get_case_for``, then ``check_case_reviewer`` (403, recorded). The page and the API both
    take the case from here.

    A reviewer saw every pending case in the queue, so a case another reviewer decided since
    (it left the queue, and with it their view) is not a 404 to them but a lost race: 409,
    saying what happened (approved or rejected, and when; never by whom), for a day after the
    decision (a queue page left open). Anyone else, any case never decided and any decided
    longer ago still get the 404.
    """
    try:
        case = get_case_for(user, pk)
    except Http404:
        decided = _decided_by_another(user, pk)
        if decided is None:
            raise
        raise InvalidTransition(decided) from None
    check_case_reviewer(user, case, verb)
    return case


def _decided_by_another(user: User, pk) -> str | None:
    if not _is_real(user) or not user.is_reviewer or not str(pk).isdigit() or len(str(pk)) > 18:
        return None
    case = (
        Case.objects.filter(pk=int(pk), decided_at__gte=Now() - LOST_RACE_WINDOW, decided_by__isnull=False)
        .only("reference", "status", "decided_at")
        .first()
    )
    if case is None:
        return None
    outcome = "rejected" if case.status == CaseStatus.REJECTED else "approved"
    return (
        f"Case {case.reference} was {outcome} by another legal reviewer at "
        f"{case.decided_at:%Y-%m-%d %H:%M} UTC; it is no longer awaiting approval."
    )


def record_denial(*, actor: User, case: Case, perm: str, message: str = "") -> PermissionDenied:
    """Record an ``access.denied`` event for a visible case and return the exception to raise.

    Runs in its own transaction (callers check before starting theirs), so the denial stays
    in the ledger although the action is refused.
    """
    if not message:
        message = PERMISSION_MESSAGES.get(perm, "You may not do this on this case.")
        if case.is_closed and perm not in CLOSED_CASE_PERMS:
            message = "The case is closed; it can no longer be changed."
    audit.record(
        action=Action.ACCESS_DENIED,
        actor=actor,
        target=case,
        case_reference=case.reference,
        details={"permission": perm, "message": message},
    )
    return PermissionDenied(message)


def case_flags(user: User, case: Case) -> dict[str, bool]:
    """What ``user`` may do on ``case``, precomputed for templates (one permission query)."""
    perms = object_perms(user, case)
    reviewable = case.awaits_approval and can_review_case(user, case)
    return {
        "can_edit": "change_case" in perms and case.is_editable,
        "can_resubmit": "change_case" in perms and case.may_resubmit,
        "can_hold": "change_case" in perms and case.may_hold,
        "can_resume": "change_case" in perms and case.may_resume,
        "can_classify": "change_case" in perms and case.is_active,
        "can_manage_team": "manage_team" in perms and not case.is_closed,
        "can_close": "close_case" in perms and case.may_close,
        "can_add_note": "add_note" in perms and not case.is_closed,
        "can_work_tasks": CONTRIBUTE_PERM in perms and not case.is_closed,
        "can_add_evidence": CONTRIBUTE_PERM in perms and case.accepts_evidence,
        "can_file_request": "file_request" in perms and case.accepts_requests,
        "can_approve": reviewable,
        "can_reject": reviewable,
        "can_legal_hold": bool(user.is_reviewer) and may_set_legal_hold(user, case),
    }


PERMISSION_MESSAGES = {
    "change_case": "Only the case lead may edit the case.",
    "manage_team": "Only the case lead may change the team.",
    "close_case": "Only the case lead may close the case.",
    "add_note": "Only the case team may add notes.",
    "file_request": "Only the case team may file data-pull requests.",
}


def _get_visible(queryset: QuerySet[_M], pk) -> _M:
    try:
        pk = int(str(pk), 10)
    except (TypeError, ValueError):
        raise Http404 from None
    if pk <= 0 or pk > ID_MAX:
        raise Http404
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


def involvement_in(user: User, case_id: int) -> set[str]:
    """How ``user`` is or ever was involved in a case (``Involvement`` values): one query.

    Read from the periods of ``CaseMembership``, which the team, request and grant actions
    write and never delete: leaving the team, or a grant, does not make anyone independent.
    """
    return set(CaseMembership.objects.filter(case_id=case_id, user=user).values_list("involvement", flat=True))


def _involved(user: User, case_field: str) -> Exists:
    """``Exists`` over the involvement history, for querysets (``case_field`` names the case column)."""
    return Exists(CaseMembership.objects.filter(case=OuterRef(case_field), user=user))


def can_review_case(user: User, case: Case) -> bool:
    """A legal reviewer never involved in the case (team, requests, grants) may approve or reject it."""
    return _is_real(user) and user.is_reviewer and not involvement_in(user, case.pk)


LEGAL_HOLD_DENIED = "Only a legal reviewer independent of the case places or lifts a legal hold."


def may_set_legal_hold(user: User, case: Case) -> bool:
    """A legal reviewer never involved in the case (as for approving it), in any state of the case."""
    return can_review_case(user, case)


def get_case_for_legal_hold(user: User, pk) -> Case:
    """The case ``pk`` for placing or lifting its legal hold: 404 if invisible, 403 (recorded) unless
    ``may_set_legal_hold``."""
    case = get_case_for(user, pk)
    if not may_set_legal_hold(user, case):
        raise record_denial(actor=user, case=case, perm="legal_hold", message=LEGAL_HOLD_DENIED)
    return case


def case_for_auditor(user: User, reference: str) -> Case:
    """The case with ``reference`` for an auditor's view of its ledger (404 for anyone else).

    Auditors see no case page; they read the ledger, and the timeline is the ledger told as
    sentences, so they get it by reference.
    """
    if not is_auditor(user):
        raise Http404
    case = Case.objects.filter(reference=str(reference)).first()
    if case is None:
        raise Http404
    return case


# --- case reports ------------------------------------------------------------------------


def report_audience(user: User, case: Case) -> str:
    """Which version of the case report ``user`` gets (``ReportAudience``).

    Legal reviewers never involved in the case get everything (``LEGAL``), as their request
    pages show it; everyone else who sees the case gets the team's version (``TEAM``), which
    before a decision holds nothing that depends on the user-data store or the registry
    (invariant 10). The same test as ``sees_protection_detail``: involvement is historical, so
    an ex-member made a reviewer, or a legacy user with two roles, gets the team's version.
    """
    if _is_real(user) and user.is_reviewer and not involvement_in(user, case.pk):
        return ReportAudience.LEGAL
    return ReportAudience.TEAM


def case_reports_visible_to(user: User, case: Case) -> QuerySet[CaseReport]:
    """The produced reports of ``case`` (which ``user`` sees: from ``get_case_for``) that ``user`` may open:
    the team's versions, and the legal versions only for those they would be produced for."""
    reports = CaseReport.objects.filter(case=case).select_related("case", "produced_by").defer("html", "pdf")
    if report_audience(user, case) != ReportAudience.LEGAL:
        reports = reports.filter(audience=ReportAudience.TEAM)
    return reports


def get_case_report_for(user: User, pk) -> CaseReport:
    """The produced report ``pk`` if ``user`` sees its case and may open its version (else 404)."""
    report = _get_visible(CaseReport.objects.filter(case__in=cases_visible_to(user)).select_related("case"), pk)
    if report.audience == ReportAudience.LEGAL and report_audience(user, report.case) != ReportAudience.LEGAL:
        raise Http404
    return report


# --- notes -------------------------------------------------------------------------------


def get_note_for(user: User, pk, *, edit: bool = False) -> CaseNote:
    """The note ``pk`` if its case is visible (else 404); with ``edit``, 403 unless ``user`` wrote
    it and is still on the team."""
    note = _get_visible(CaseNote.objects.filter(case__in=cases_visible_to(user)).select_related("case", "author"), pk)
    if edit and (note.author_id != user.pk or CONTRIBUTE_PERM not in object_perms(user, note.case)):
        raise record_denial(actor=user, case=note.case, perm="edit_note", message=NOTE_EDIT_DENIED)
    return note


# --- evidence ----------------------------------------------------------------------------


def _team_case_ids(user: User) -> QuerySet:
    """Ids of the cases ``user`` is on the team of now (``view_case`` held directly: the team).

    Not ``cases_visible_to``: a legal reviewer sees cases awaiting their decision without
    being on the team, and evidence is the team's.
    """
    return _perm_ids(CaseUserObjectPermission, CaseGroupObjectPermission, user, "view_case")


def evidence_visible_to(user: User) -> EvidenceQuerySet:
    """The only way anything gets evidence.

    * Team documents: the current case team (those holding ``view_case`` on the case: the
      lead and members; removing a member takes it away, a closed case keeps it for the team).
      Legal reviewers see a case they decide, not its evidence; the case report lists it.
    * Query results: only the grantees of the grant the rows came from, and only while on the
      team. Nobody by role: not the lead unless a grantee, not staff, superusers or auditors
      (they read the custody trail in the ledger, not the rows).
    """
    if not _is_real(user):
        return Evidence.objects.none()
    on_team = Q(case_id__in=_team_case_ids(user))
    grantee = Exists(Grant.grantees.through.objects.filter(grant=OuterRef("grant"), user=user))
    documents = Q(kind=EvidenceKind.DOCUMENT)
    results = Q(kind=EvidenceKind.QUERY_RESULT) & Q(grantee)
    return Evidence.objects.filter(on_team & (documents | results))


def get_evidence_for(user: User, pk) -> Evidence:
    """The evidence item ``pk`` if ``user`` may read it (else 404, whatever the reason)."""
    queryset = evidence_visible_to(user).select_related("case", "uploaded_by", "grant", "supersedes")
    return _get_visible(queryset, pk)


def case_evidence_for(user: User, case: Case) -> EvidenceQuerySet:
    """The items of ``case`` that ``user`` may read, newest first (versions included)."""
    return evidence_visible_to(user).filter(case=case).select_related("uploaded_by", "superseded_by")


def may_add_evidence(user: User, case: Case) -> bool:
    """The team adds documents while the case is not over (``Case.accepts_evidence``)."""
    return CONTRIBUTE_PERM in object_perms(user, case) and case.accepts_evidence


def check_add_evidence(user: User, case: Case) -> None:
    """403 (recorded) unless ``user`` is on the team; the case's state is the action's to refuse."""
    if CONTRIBUTE_PERM not in object_perms(user, case):
        raise record_denial(actor=user, case=case, perm=CONTRIBUTE_PERM, message=EVIDENCE_DENIED)


# --- tasks -------------------------------------------------------------------------------


def tasks_visible_to(user: User) -> CaseTaskQuerySet:
    """Tasks on the cases ``user`` sees."""
    return CaseTask.objects.filter(case__in=cases_visible_to(user))


def get_task_for(user: User, pk, *, change: bool = False) -> CaseTask:
    """The task ``pk`` if its case is visible (else 404); with ``change``, 403 unless on the team."""
    task = _get_visible(tasks_visible_to(user).select_related("case", "assignee"), pk)
    if change and CONTRIBUTE_PERM not in object_perms(user, task.case):
        raise record_denial(actor=user, case=task.case, perm=CONTRIBUTE_PERM, message=TASKS_DENIED)
    return task


def my_open_tasks(user: User) -> QuerySet[CaseTask]:
    """Unfinished tasks assigned to ``user`` on cases they see, overdue first."""
    if not _is_real(user):
        return CaseTask.objects.none()
    return tasks_visible_to(user).filter(assignee=user).unfinished().overdue_first()


def case_templates_for(user: User) -> QuerySet[CaseTemplate]:
    """The case templates, for staff who keep them (404 for anyone else)."""
    if not (_is_real(user) and user.is_staff):
        raise Http404
    return CaseTemplate.objects.prefetch_related("tasks")


# --- data-pull requests ------------------------------------------------------------------


def case_seen_by(user: User, case: OuterRef) -> Q:
    """``cases_visible_to(user)`` as a test of the one case ``case`` names (an ``OuterRef`` to a
    case id): each way of seeing it is an ``Exists`` on that case alone (its permission rows and,
    for a legal reviewer, ``_reviewer_case_ids`` case by case). For fetching one row: the UNION
    of ``cases_visible_to`` reads everything the user sees first, for a reviewer their whole
    queue and decision history. Selects the same cases (``tests/investigations/test_cases.py`` and
    ``test_requests_one_row.py`` hold them equal)."""
    if not _is_real(user):
        return Q(pk__in=[])
    direct = CaseUserObjectPermission.objects.filter(user=user, content_object=case, permission__codename="view_case")
    via_group = CaseGroupObjectPermission.objects.filter(
        group__user=user, content_object=case, permission__codename="view_case"
    )
    seen = Q(Exists(direct)) | Q(Exists(via_group))
    if user.is_reviewer:
        the_case = Case.objects.filter(pk=case).filter(
            Q(status=CaseStatus.PENDING_APPROVAL)
            | Q(decided_by=user)
            | Q(legal_hold=True, legal_hold_lift_by__isnull=False)
        )
        seen |= Q(Exists(the_case))
        seen |= Q(Exists(DataPullRequest.objects.filter(case=case, status=RequestStatus.SUBMITTED)))
        seen |= Q(Exists(Decision.objects.filter(reviewer=user, request__case=case)))
    return seen


def requests_visible_to(user: User, *, one_row: bool = False) -> QuerySet[DataPullRequest]:
    """Requests on cases the user sees; ones never submitted only to the case team (legal sees
    what was sent to legal). ``one_row``: the same requests, their case tested row by row
    (``case_seen_by``), for fetching one request by its key."""
    if not _is_real(user):
        return DataPullRequest.objects.none()
    on_team = CaseMember.objects.filter(case=OuterRef("case"), user=user)
    on_seen_case = case_seen_by(user, OuterRef("case")) if one_row else Q(case__in=cases_visible_to(user))
    # The team and involvement tests are kept on each row (for this viewer), so pages and the
    # API can tell who sees protection detail without one query per listed request
    # (sees_protection_detail).
    return (
        DataPullRequest.objects.filter(on_seen_case)
        .annotate(viewer_pk=Value(user.pk), viewer_on_team=Exists(on_team), viewer_involved=_involved(user, "case"))
        .filter(Q(viewer_on_team=True) | Q(submitted_at__isnull=False))
    )


def independence_problem(user: User, request: DataPullRequest) -> str | None:
    """Why ``user`` may not decide ``request``, or None. Enforced in the action, shown by pages.

    Historical: whoever is or ever was on the case's team, filed any request on it, or held
    any grant on it is not independent of it (``involvement_in``).
    """
    if not _is_real(user):
        return "Only active legal reviewers decide data-pull requests."
    if user.pk == request.requested_by_id:
        return "You filed this request; someone independent must decide it."
    involved = involvement_in(user, request.case_id)
    if Involvement.GRANTEE in involved:
        return "You hold or held a grant on this case; someone independent must decide it."
    if Involvement.TEAM in involved:
        return "You are or were on this case's team; someone independent must decide it."
    if Involvement.REQUESTER in involved:
        return "You filed a request on this case; someone independent must decide it."
    if not user.is_reviewer:
        return "Only legal reviewers decide data-pull requests."
    return None


def _is_requester(user: User, request: DataPullRequest) -> bool:
    return _is_real(user) and user.pk == request.requested_by_id


def request_problem(user: User, request: DataPullRequest, perm: str) -> str | None:
    """Why ``user`` may not ``perm`` (edit, submit, withdraw, decide) ``request``, or None.

    This is about who the user is, not about the request's state: the actions refuse a wrong
    state separately (``InvalidTransition``).
    """
    if perm in ("edit", "submit"):
        return None if _is_requester(user, request) else f"Only the requester may {perm} the request."
    if perm == "withdraw":
        if _is_requester(user, request) or (_is_real(user) and user.pk == request.case.lead_id):
            return None
        return "Only the requester or the case lead may withdraw the request."
    if perm == "decide":
        return independence_problem(user, request)
    raise ValueError(f"unknown request permission {perm!r}")


def get_request_for(user: User, pk, perm: str | None = None) -> DataPullRequest:
    """The request ``pk`` if ``user`` may see it (else 404); with ``perm``, 403 unless allowed."""
    request = _get_visible(requests_visible_to(user, one_row=True).select_related("case", "requested_by"), pk)
    if perm is not None:
        problem = request_problem(user, request, perm)
        if problem:
            raise PermissionDenied(problem)
    return request


def request_flags(user: User, request: DataPullRequest) -> dict[str, bool]:
    """What the page may offer: who the user is and the request's state, together."""
    editable = request.status in EDITABLE_STATUSES
    return {
        "can_edit": editable and request_problem(user, request, "edit") is None,
        "can_submit": editable and request_problem(user, request, "submit") is None,
        "can_withdraw": editable and request_problem(user, request, "withdraw") is None,
        "can_decide": can_decide(user, request),
    }


def can_decide(user: User, request: DataPullRequest) -> bool:
    """A reviewer independent of the request who has not yet decided its current round."""
    if request.status != RequestStatus.SUBMITTED or independence_problem(user, request):
        return False
    return not request.decisions.filter(review_round=request.review_round, reviewer=user).exists()


def sees_protection_detail(user: User, request: DataPullRequest) -> bool:
    """Which protected account a request touches, and through which link, is for legal reviewers
    never involved in the case: to the team it would disclose what the store knows (a shared
    phone or device) without a grant. The team, past members included (whatever role they hold
    now), sees only that the protected policy applies."""
    if not (_is_real(user) and user.is_reviewer):
        return False
    if getattr(request, "viewer_pk", None) == user.pk:  # loaded by requests_visible_to(user)
        return not request.viewer_involved  # type: ignore[attr-defined]  # annotated with viewer_pk
    return not involvement_in(user, request.case_id)


def can_file_request(user: User, case: Case) -> bool:
    return "file_request" in object_perms(user, case) and case.accepts_requests


def _approval_count() -> Coalesce:
    """Approvals of the request's current round. A correlated count, not a JOIN + GROUP BY: the
    database then counts only for the rows it returns, instead of aggregating the whole queue."""
    approvals = (
        Decision.objects.filter(
            request=OuterRef("pk"), review_round=OuterRef("review_round"), outcome__in=APPROVING_OUTCOMES
        )
        .order_by()
        .values("request")
        .annotate(count=Count("pk"))
        .values("count")
    )
    return Coalesce(Subquery(approvals), 0)


def review_queue_for(user: User) -> QuerySet[DataPullRequest]:
    """Submitted requests this reviewer may decide and has not yet decided (with approval counts).

    Never a request on a case the reviewer is or was involved in (``involvement_in``).
    """
    if not _is_real(user) or not user.is_reviewer:
        return DataPullRequest.objects.none()
    decided = Decision.objects.filter(request=OuterRef("pk"), reviewer=user, review_round=OuterRef("review_round"))
    return review_queue_rows(
        DataPullRequest.objects.filter(status=RequestStatus.SUBMITTED, case__status=CaseStatus.OPEN)
        .exclude(requested_by=user)
        .exclude(_involved(user, "case") | Exists(decided))
    ).order_by("submitted_at", "id")


def review_queue_rows(requests: QuerySet[DataPullRequest]) -> QuerySet[DataPullRequest]:
    """What a queue row shows (case, requester, approvals so far) for ``requests`` that came from
    ``review_queue_for``: the queue page reads its page's rows through here by id."""
    return requests.select_related("case", "requested_by").annotate(approval_count=_approval_count())


# --- grants ------------------------------------------------------------------------------


def grants_visible_to(user: User) -> GrantQuerySet:
    """Grants on cases the user sees (team, lead, legal reviewers who see the case) or held by them.

    Auditors and superusers see none by status: they see the ledger, not the grants.
    """
    if not _is_real(user):
        return Grant.objects.none()
    on_visible_cases = Grant.objects.filter(case__in=cases_visible_to(user)).order_by().values("pk")
    held = _perm_ids(GrantUserObjectPermission, GrantGroupObjectPermission, user, "view_grant")
    return Grant.objects.filter(pk__in=on_visible_cases.union(held))


def grant_seen_by(user: User) -> Q:
    """``grants_visible_to(user)`` as a test of each grant alone: its case seen (``case_seen_by``)
    or ``view_grant`` held on it, directly or through a group. For fetching one grant: the UNION
    reads every grant on every case the user sees first (``tests/investigations/
    test_grant_shapes.py`` holds them equal)."""
    if not _is_real(user):
        return Q(pk__in=[])
    direct = GrantUserObjectPermission.objects.filter(
        user=user, content_object=OuterRef("pk"), permission__codename="view_grant"
    )
    via_group = GrantGroupObjectPermission.objects.filter(
        group__user=user, content_object=OuterRef("pk"), permission__codename="view_grant"
    )
    return case_seen_by(user, OuterRef("case")) | Q(Exists(direct)) | Q(Exists(via_group))


def grant_id_of_request(user: User, request: DataPullRequest) -> int | None:
    """The id of ``request``'s grant if ``user`` sees it (``grants_visible_to``), else None.

    A grant is visible on every case its viewer sees, so for a request read through
    ``requests_visible_to(user)`` (it carries that viewer's ``viewer_pk``) its grant is looked up
    by the request's key alone: one statement that does not read everything the user sees (a
    reviewer's whole queue and decision history). Any other request takes the UNION.
    """
    if not _is_real(user):
        return None
    grants = Grant.objects.filter(request=request)
    if getattr(request, "viewer_pk", None) != user.pk:
        grants = grants_visible_to(user).filter(request=request)
    return grants.values_list("pk", flat=True).first()


def grants_listed_for(user: User) -> GrantQuerySet:
    """``grants_visible_to(user)``, the same rows, in the shape that lists them fastest (as
    ``cases_listed_for``): a holder of ``view_grant`` on ``DENSE_VIEWER`` grants or more gets
    the test per grant (held directly or through a group, or on a case they see), so the grant
    list walks its newest-first index and stops after a page. SQLite keeps the UNION."""
    return grant_listing(user).rows


def grant_listing(user: User) -> Listing[GrantQuerySet]:
    """The grant list's rows (``grants_listed_for``) and the shape that counts them (as
    ``case_listing``)."""
    return _listing(user, "grant", grants_visible_to(user), grants_tested_per_row)


def grants_tested_per_row(user: User, permission: int | None = None) -> GrantQuerySet:
    """``grants_visible_to(user)`` as a test on each grant (see ``grants_listed_for``)."""
    if not _is_real(user):
        return Grant.objects.none()
    held = _holding(permission, "view_grant")
    direct = GrantUserObjectPermission.objects.filter(user=user, content_object=OuterRef("pk"), **held)
    via_group = GrantGroupObjectPermission.objects.filter(group__user=user, content_object=OuterRef("pk"), **held)
    on_visible_case = Q(case_id__in=cases_visible_to(user).order_by().values("pk"))
    return Grant.objects.filter(Q(Exists(direct)) | Q(Exists(via_group)) | on_visible_case)


def can_revoke(user: User, grant: Grant) -> bool:
    """The approving reviewer, any legal reviewer, or the case lead may revoke (state aside)."""
    if not _is_real(user):
        return False
    if user.is_reviewer or user.pk == grant.case.lead_id:
        return True
    return Decision.objects.filter(request=grant.request_id, reviewer=user, outcome__in=APPROVING_OUTCOMES).exists()


def get_grant_for(user: User, pk, perm: str | None = None) -> Grant:
    """The grant ``pk`` if ``user`` may see it (else 404); with ``perm`` ("revoke" or a guardian
    codename such as "query_grant"), 403 unless allowed. The grant is tested alone
    (``grant_seen_by``), not found among every grant the user sees."""
    grant = _get_visible(Grant.objects.filter(grant_seen_by(user)).select_related("case", "request"), pk)
    if perm == "revoke":
        if not can_revoke(user, grant):
            raise PermissionDenied("Only a legal reviewer or the case lead may revoke the grant.")
    elif perm is not None and perm not in object_perms(user, grant):
        raise PermissionDenied("Only the grantees may use this grant.")
    return grant


def grant_flags(user: User, grant: Grant) -> dict[str, bool]:
    return {
        "can_revoke": grant.status == GrantStatus.ACTIVE and can_revoke(user, grant),
        "is_grantee": grant.grantees.filter(pk=user.pk).exists(),
    }


# --- grants, as the query pages see them, and queries ---------------------------------------


def _on_team_or_grantee(user: User) -> Q:
    """The grant's grantees, and its case team (``view_case`` held directly or through a group)."""
    on_team = Q(case_id__in=_perm_ids(CaseUserObjectPermission, CaseGroupObjectPermission, user, "view_case"))
    return Q(Exists(Grant.grantees.through.objects.filter(grant=OuterRef("pk"), user=user))) | on_team


def get_grant_for_query(user: User, pk) -> Grant:
    """The grant ``pk`` for the query pages: its grantees and its case team see it, others 404.

    A team member who is not a grantee sees the page; a query they submit is refused and
    recorded (``not_grantee``). The grant may be revoked or expired: submitting is refused then.
    """
    if not _is_real(user):
        raise Http404
    return _get_visible(Grant.objects.select_related("case").filter(_on_team_or_grantee(user)), pk)


def queries_visible_to(user: User) -> QuerySet[DataQuery]:
    """Queries a user may see the record of: their own, their grants', and all for auditors.

    Seeing the record (parameters, status, row count, digest) is not seeing the rows: that is
    ``actions.query.results_problem``.
    """
    if not _is_real(user):
        return DataQuery.objects.none()
    queries = DataQuery.objects.select_related("grant__case", "user")
    if user.is_auditor:
        return queries
    grantee = Grant.grantees.through.objects.filter(grant=OuterRef("grant"), user=user)
    return queries.filter(Q(user=user) | Q(Exists(grantee)))


def get_query_for(user: User, pk) -> DataQuery:
    """The query ``pk`` if ``user`` may see its record (else 404)."""
    return _get_visible(queries_visible_to(user), pk)


def withholds_resolution(user: User, request: DataPullRequest) -> bool:
    """Whether ``user`` is shown ``request`` without anything that depends on the user-data store
    or the protected-subject registry (invariant 10, no oracle before a decision).

    Who an email, phone, IP or device reaches, whether a named account is among them, whether
    any account is protected or linked to one, and the policy that follows from it, is for
    legal reviewers off the case team. Until the request is approved, everyone else (the case
    team above all) sees only what they typed and the accounts they named directly; the
    protected policy is applied at submission and at each decision, where only reviewers see
    its reasons. Once approved, the grant's frozen scope names every account anyway.
    """
    return request.status != RequestStatus.APPROVED and not sees_protection_detail(user, request)


def named_subjects(request: DataPullRequest) -> list[int]:
    """The accounts named directly (account id or handle), in the order they were typed.

    Never ``request.subjects`` filtered: its order follows the resolution (an account behind
    an IP typed first comes first), and the order would tell.
    """
    named = []
    for entry in request.subject_inputs:
        if entry.get("kind") in DIRECT_KINDS:
            named += [account for account in entry.get("accounts", []) if account not in named]
    return named


def subjects_shown_to(user: User, request: DataPullRequest) -> list[int]:
    """The request's subjects as ``user`` may see them (see ``withholds_resolution``)."""
    if withholds_resolution(user, request):
        return named_subjects(request)
    return [int(subject) for subject in request.subjects]


def decisions_shown_to(user: User, request: DataPullRequest) -> QuerySet[Decision]:
    """The decisions on ``request`` that ``user`` sees.

    While the resolution is withheld, only decisions that ended a round (returned, rejected)
    are shown, with the reviewer's own reason: an approval that did not complete the request
    would tell the team that the protected policy applies, and its scope whom the request reaches.
    """
    decisions = request.decisions.select_related("reviewer").order_by("review_round", "created_at", "id")
    if withholds_resolution(user, request):
        decisions = decisions.exclude(outcome__in=APPROVING_OUTCOMES)
    return decisions


# --- oversight alerts and grant reports -----------------------------------------------------


def alerts_visible_to(user: User) -> QuerySet[Alert]:
    """Oversight alerts: active auditors see all of them, everyone else none."""
    if not is_auditor(user):
        return Alert.objects.none()
    return Alert.objects.select_related("case", "user", "acknowledged_by")


def get_alert_for(user: User, pk) -> Alert:
    """The alert ``pk`` for an auditor; 404 for everyone else, superusers and staff included."""
    return _get_visible(alerts_visible_to(user), pk)


def reports_visible_to(user: User) -> QuerySet[GrantReport]:
    """Scope-diff reports: auditors see all; others those of grants they may see."""
    if not _is_real(user):
        return GrantReport.objects.none()
    reports = GrantReport.objects.select_related("grant__case")
    if is_auditor(user):
        return reports
    return reports.filter(grant__in=grants_visible_to(user))


def get_report_for(user: User, pk) -> GrantReport:
    """The report ``pk`` if ``user`` is an auditor or may see its grant (else 404)."""
    return _get_visible(reports_visible_to(user), pk)


# --- the protected-subject registry --------------------------------------------------------


def may_manage_registry(user: User) -> bool:
    """Administrators (staff) and senior legal reviewers manage the registry (the actions ask)."""
    return _is_real(user) and (user.is_staff or user.is_senior_reviewer)


def registry_for(user: User) -> ProtectedSubjectQuerySet:
    """The registry, for its page: senior legal reviewers only; anyone else gets 404.

    The entries in force: listed ones, and removed ones still in their cooling period.
    Administrators use the admin; the page is the senior reviewers' own place.
    """
    if not _is_real(user) or not user.is_senior_reviewer:
        raise Http404
    return ProtectedSubject.objects.in_force().select_related("added_by", "changed_by")


def get_protected_for(user: User, pk) -> ProtectedSubject:
    """One listed registry entry for the registry page (404 for anyone but senior legal reviewers)."""
    return _get_visible(registry_for(user).listed(), pk)


def proposals_for(user: User) -> QuerySet[RegistryProposal]:
    """Proposals to weaken the registry: senior legal reviewers only; anyone else gets 404."""
    if not _is_real(user) or not user.is_senior_reviewer:
        raise Http404
    return RegistryProposal.objects.select_related("subject", "proposed_by", "decided_by")


def get_proposal_for(user: User, pk) -> RegistryProposal:
    """One proposal, for confirming or withdrawing it (404 for anyone but senior legal reviewers)."""
    return _get_visible(proposals_for(user), pk)


# --- start pages and the reviewer's own decisions ------------------------------------------


def my_active_cases(user: User) -> QuerySet[Case]:
    """Visible cases whose team ``user`` is on and that are not over (pending, open, on hold)."""
    on_team = CaseMember.objects.filter(case=OuterRef("pk"), user=user)
    return cases_visible_to(user).active().filter(Exists(on_team))


def my_requests_awaiting_decision(user: User) -> QuerySet[DataPullRequest]:
    """Submitted requests on cases ``user`` is on the team of (theirs and their colleagues')."""
    on_team = CaseMember.objects.filter(case=OuterRef("case"), user=user)
    return requests_visible_to(user).filter(Exists(on_team), status=RequestStatus.SUBMITTED)


def my_returned_requests(user: User) -> QuerySet[DataPullRequest]:
    """Requests returned for changes on cases ``user`` is on the team of: the team's move next."""
    on_team = CaseMember.objects.filter(case=OuterRef("case"), user=user)
    return requests_visible_to(user).filter(Exists(on_team), status=RequestStatus.RETURNED)


def my_usable_grants(user: User) -> QuerySet[Grant]:
    """Grants ``user`` may query under right now (database clock), from the visible ones."""
    if not _is_real(user):
        return Grant.objects.none()
    return grants_visible_to(user).usable_by(user)


def my_recent_queries(user: User) -> QuerySet[DataQuery]:
    """``user``'s own queries, each with ``case_visible``: whether they still see its case. Someone
    taken off the team keeps the record of their queries, not the case page (a link would 404)."""
    team_cases = _perm_ids(CaseUserObjectPermission, CaseGroupObjectPermission, user, "view_case")
    on_team = ExpressionWrapper(Q(grant__case_id__in=team_cases), output_field=BooleanField())
    return queries_visible_to(user).filter(user=user).annotate(case_visible=on_team)


def cases_awaiting_approval_for(user: User) -> QuerySet[Case]:
    """Pending cases a legal reviewer sees, with ``reviewer_on_team`` (they are or were involved in
    the case, so they may not decide it)."""
    if not _is_real(user) or not user.is_reviewer:
        return Case.objects.none()
    pending = cases_visible_to(user).pending_approval()
    return pending.annotate(reviewer_on_team=_involved(user, "pk"))


def decisions_made_by(user: User) -> QuerySet[Decision]:
    """The decisions ``user`` recorded as a legal reviewer (their own record; nothing else)."""
    if not _is_real(user) or not user.is_reviewer:
        return Decision.objects.none()
    return Decision.objects.filter(reviewer=user)
