"""Bulk builders for benchmark data. Benchmarks may write rows directly; tests never do."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import User
from investigations.models import Case, CaseUserObjectPermission, DataPullRequest, Grant


def user(username: str) -> User:
    return User.objects.get_or_create(username=username)[0]


def cases(count: int, lead: User, prefix: str) -> list[Case]:
    rows = [
        Case(
            reference=f"{prefix}-{index:07d}",
            title=f"Case {index}",
            allegation="a",
            case_type="fraud",
            purpose="p",
            status="open",
            lead=lead,
        )
        for index in range(count)
    ]
    return Case.objects.bulk_create(rows, batch_size=5000)


def view_perms(user: User, case_list: list[Case]) -> None:
    permission = Permission.objects.get(codename="view_case", content_type__app_label="investigations")
    CaseUserObjectPermission.objects.bulk_create(
        [CaseUserObjectPermission(user=user, permission=permission, content_object=case) for case in case_list],
        batch_size=5000,
    )


def due_grants(count: int, case: Case, requester: User) -> list[Grant]:
    today = timezone.now().date()
    requests = DataPullRequest.objects.bulk_create(
        [
            DataPullRequest(
                case=case,
                requested_by=requester,
                status="approved",
                subjects=[1],
                categories=["profile"],
                window_start=today - timedelta(days=3),
                window_end=today,
                justification="j",
                legal_basis="internal_policy",
                duration_hours=1,
            )
            for _ in range(count)
        ],
        batch_size=5000,
    )
    past = timezone.now() - timedelta(hours=2)
    grants = Grant.objects.bulk_create(
        [
            Grant(
                request=request,
                case=case,
                subjects=[1],
                categories=["profile"],
                window_start=request.window_start,
                window_end=request.window_end,
                starts_at=past,
                expires_at=past + timedelta(hours=1),
            )
            for request in requests
        ],
        batch_size=5000,
    )
    return grants
