"""Bulk builders for scale tests: thousands of grants in a few statements.

Scale tests are the one place where tests write rows directly: walking 10,000 approvals
through the actions would take minutes and test nothing more. The rows have the shape the
actions give them (an approved request, a grant with its grantee and object permissions).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.contrib.auth.models import Permission
from django.utils import timezone

from accounts.models import User
from investigations.models import Case, DataPullRequest, Grant, GrantUserObjectPermission

BATCH = 2000


def grants(count: int, *, case: Case, grantee: User, expires_at: datetime) -> list[Grant]:
    """``count`` active grants on ``case`` to ``grantee`` (view and query permissions), ending at ``expires_at``."""
    now = timezone.now()
    today = now.date()
    requests = DataPullRequest.objects.bulk_create(
        [
            DataPullRequest(
                case=case,
                requested_by=grantee,
                status="approved",
                subjects=[1],
                categories=["profile"],
                window_start=today - timedelta(days=3),
                window_end=today,
                justification="Bulk-built request for a scale test of grant expiry.",
                legal_basis="internal_policy",
                duration_hours=1,
            )
            for _ in range(count)
        ],
        batch_size=BATCH,
    )
    made = Grant.objects.bulk_create(
        [
            Grant(
                request=request,
                case=case,
                subjects=[1],
                categories=["profile"],
                window_start=request.window_start,
                window_end=request.window_end,
                starts_at=min(expires_at, now) - timedelta(hours=1),
                expires_at=expires_at,
            )
            for request in requests
        ],
        batch_size=BATCH,
    )
    Grant.grantees.through.objects.bulk_create(
        [Grant.grantees.through(grant_id=grant.pk, user_id=grantee.pk) for grant in made], batch_size=BATCH
    )
    permissions = Permission.objects.filter(
        content_type__app_label="investigations", codename__in=["view_grant", "query_grant"]
    )
    GrantUserObjectPermission.objects.bulk_create(
        [
            GrantUserObjectPermission(user=grantee, permission=permission, content_object=grant)
            for grant in made
            for permission in permissions
        ],
        batch_size=BATCH,
    )
    return made
