"""Who may see or do what: the one chokepoint.

Every view, API view and action gets objects through these functions. An object the user
may not see raises ``Http404`` (indistinguishable from one that does not exist); an object
they may see but not act on raises ``PermissionDenied`` with a message that says why.

django-guardian holds the object permissions, in direct foreign-key tables. They are read
here with explicit ``Exists()`` filters rather than guardian's shortcuts, because those
default to letting superusers and global model permissions through
(``with_superuser=True, accept_global_perms=True``): in Custos, superuser status and global
permissions open nothing. Inactive users hold nothing.
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Exists, Model, OuterRef, Q, QuerySet
from django.http import Http404

from accounts.models import User

from .models import (
    Case,
    CaseGroupObjectPermission,
    CaseStatus,
    CaseUserObjectPermission,
    DataPullRequest,
    DataQuery,
    Decision,
    Grant,
    RequestStatus,
)

CASE_PERMS = ("view_case", "change_case", "manage_team", "close_case", "add_note", "file_request")
LEAD_PERMS = CASE_PERMS
MEMBER_PERMS = ("view_case", "add_note", "file_request")


def _is_real(user) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _perm_exists(user_model, group_model, user: User, codename: str):
    """An ``Exists()`` that is true for objects on which ``user`` holds ``codename``."""
    direct = user_model.objects.filter(content_object=OuterRef("pk"), user=user, permission__codename=codename)
    via_group = group_model.objects.filter(
        content_object=OuterRef("pk"), group__user=user, permission__codename=codename
    )
    return Exists(direct) | Exists(via_group)


def object_perms(user: User, obj: Case) -> set[str]:
    """The codenames ``user`` holds on ``obj``, fresh from the database (no cache)."""
    if not _is_real(user):
        return set()
    direct = CaseUserObjectPermission.objects.filter(content_object=obj, user=user)
    via_group = CaseGroupObjectPermission.objects.filter(content_object=obj, group__user=user)
    return set(direct.values_list("permission__codename", flat=True)) | set(
        via_group.values_list("permission__codename", flat=True)
    )


# --- cases -------------------------------------------------------------------------------


def _reviewer_case_filter() -> Q:
    """Cases a legal reviewer sees: those awaiting approval, and those whose requests they review."""
    under_review = DataPullRequest.objects.filter(case=OuterRef("pk"), status=RequestStatus.SUBMITTED)
    return Q(status=CaseStatus.PENDING_APPROVAL) | Q(Exists(under_review))


def cases_visible_to(user: User) -> QuerySet[Case]:
    """The only way lists get cases."""
    if not _is_real(user):
        return Case.objects.none()
    visible = Q(_perm_exists(CaseUserObjectPermission, CaseGroupObjectPermission, user, "view_case"))
    if user.is_reviewer:
        decided = Decision.objects.filter(request__case=OuterRef("pk"), reviewer=user)
        visible |= _reviewer_case_filter() | Q(decided_by=user) | Q(Exists(decided))
    return Case.objects.filter(visible)


def get_case_for(user: User, pk, perm: str | None = None) -> Case:
    """The case ``pk`` if ``user`` may see it (else 404); with ``perm``, 403 unless they hold it."""
    case = _get_visible(cases_visible_to(user), pk)
    if perm is not None and perm not in object_perms(user, case):
        raise PermissionDenied(PERMISSION_MESSAGES.get(perm, "You may not do this on this case."))
    return case


PERMISSION_MESSAGES = {
    "change_case": "Only the case lead may edit the case.",
    "manage_team": "Only the case lead may change the team.",
    "close_case": "Only the case lead may close the case.",
    "add_note": "Only the case team may add notes.",
    "file_request": "Only the case team may file data-pull requests.",
}


def _get_visible(queryset: QuerySet, pk) -> Model:
    try:
        pk = int(str(pk), 10)
    except (TypeError, ValueError):
        raise Http404 from None
    if pk <= 0 or pk > 2**63 - 1:
        raise Http404
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


def can_review_case(user: User, case: Case) -> bool:
    """A legal reviewer who is not on the case team may approve or reject a pending case."""
    return _is_real(user) and user.is_reviewer and not case.is_on_team(user)


# --- grants, as the query pages see them, and queries ---------------------------------------


def _on_team_or_grantee(user: User) -> Q:
    on_team = CaseUserObjectPermission.objects.filter(
        content_object=OuterRef("case"), user=user, permission__codename="view_case"
    )
    return Q(Exists(Grant.grantees.through.objects.filter(grant=OuterRef("pk"), user=user))) | Q(Exists(on_team))


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
