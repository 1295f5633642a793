"""The involvement history behind independent approval: periods on a case, never deleted.

Called inside the transactions of the team, request and grant actions, so a change and its
period commit together. The ledger keeps the same story as events; these rows make the
independence check one indexed query (``access.involvement_in``).
"""

from __future__ import annotations

from django.utils import timezone

from accounts.models import User

from ..models import Case, CaseMembership, DataPullRequest, Grant, Involvement, RequestStatus


def team_joined(*, case: Case, user: User) -> None:
    CaseMembership.objects.create(case=case, user=user, involvement=Involvement.TEAM, joined_at=timezone.now())


def team_left(*, case: Case, user: User) -> None:
    CaseMembership.objects.filter(case=case, user=user, involvement=Involvement.TEAM, left_at__isnull=True).update(
        left_at=timezone.now()
    )


def request_filed(*, case: Case, user: User) -> None:
    """The filer of any request on a case is involved in it for good (one row per person and case)."""
    if not CaseMembership.objects.filter(case=case, user=user, involvement=Involvement.REQUESTER).exists():
        CaseMembership.objects.create(case=case, user=user, involvement=Involvement.REQUESTER, joined_at=timezone.now())


def grantees_joined(*, grant: Grant, users) -> None:
    now = timezone.now()
    CaseMembership.objects.bulk_create(
        [
            CaseMembership(
                case_id=grant.case_id, user=user, involvement=Involvement.GRANTEE, grant=grant, joined_at=now
            )
            for user in users
        ]
    )


def grantee_left(*, grant: Grant, user: User) -> None:
    CaseMembership.objects.filter(grant=grant, user=user, left_at__isnull=True).update(left_at=timezone.now())


def decision_pending(case: Case) -> dict:
    """What is awaiting a legal decision on ``case`` (empty when nothing): a team change now is
    recorded with this and alerts oversight."""
    pending: dict[str, bool | list[int]] = {}
    if case.awaits_approval:
        pending["case"] = True
    submitted = list(
        DataPullRequest.objects.filter(case=case, status=RequestStatus.SUBMITTED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if submitted:
        pending["requests"] = submitted
    return pending
