"""Many rows in a few statements, for scale tests and benchmarks: no action, no ledger event.

Scale tests are the one place where tests write rows directly: walking 10,000 approvals
through the actions would take minutes and test nothing more. The rows come from the
``…RowFactory`` factories (``custos_testing.factories``) and have the shape the actions give
them; the functions below add what the actions would add around them (a grant's grantee and
object permissions, a case's viewers) when the caller relies on it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.contrib.auth.models import Permission
from django.db.models import Model
from django.utils import timezone

from accounts.models import User
from investigations.models import Case, CaseUserObjectPermission, DataPullRequest, Grant, GrantUserObjectPermission

from .factories import CaseRowFactory, GrantRowFactory, RequestRowFactory

BATCH = 2000

M = TypeVar("M", bound=Model)


def insert(rows: Iterable[M], *, batch_size: int = BATCH) -> list[M]:
    """Insert ``rows`` (unsaved, all of one model) with ``bulk_create``: no ``save()``, no signal."""
    rows = list(rows)
    if not rows:
        return []
    return type(rows[0])._default_manager.bulk_create(rows, batch_size=batch_size)


def rows(factory: Any, count: int, **fields: Any) -> list:
    """``count`` rows built by the row factory ``factory`` with ``fields``, inserted."""
    return insert(factory.build_batch(count, **fields))


def cases(count: int, *, lead: User, prefix: str, batch_size: int = BATCH) -> list[Case]:
    """``count`` open cases led by ``lead``, referenced ``{prefix}-0000000`` on (no team, no
    permission: ``view_perms`` gives some)."""
    return insert(
        (
            CaseRowFactory.build(reference=f"{prefix}-{index:07d}", title=f"Case {index}", lead=lead)
            for index in range(count)
        ),
        batch_size=batch_size,
    )


def view_perms(user: User, case_list: Iterable[Case], *, batch_size: int = BATCH) -> None:
    """``user`` may see each case of ``case_list`` (the object permission an action would give)."""
    permission = Permission.objects.get(codename="view_case", content_type__app_label="investigations")
    insert(
        (CaseUserObjectPermission(user=user, permission=permission, content_object=case) for case in case_list),
        batch_size=batch_size,
    )


def grantees(grants: Iterable[Grant], user: User, codenames: Iterable[str] = ("view_grant", "query_grant")) -> None:
    """``user`` holds each grant, with the object permissions ``codenames`` on it, as an approval gives."""
    grants = list(grants)
    insert(Grant.grantees.through(grant_id=grant.pk, user_id=user.pk) for grant in grants)
    permissions = list(
        Permission.objects.filter(content_type__app_label="investigations", codename__in=list(codenames))
    )
    insert(
        GrantUserObjectPermission(user=user, permission=permission, content_object=grant)
        for grant in grants
        for permission in permissions
    )


def grants(count: int, *, case: Case, grantee: User, expires_at: datetime) -> list[Grant]:
    """``count`` active grants on ``case`` to ``grantee`` (view and query permissions), each
    behind its own approved request, ending at ``expires_at``."""
    now = timezone.now()
    requests: list[DataPullRequest] = rows(
        RequestRowFactory,
        count,
        case=case,
        requested_by=grantee,
        justification="Bulk-built request for a scale test of grant expiry.",
    )
    starts_at = min(expires_at, now) - timedelta(hours=1)
    made = insert(
        GrantRowFactory.build(request=request, starts_at=starts_at, expires_at=expires_at) for request in requests
    )
    grantees(made, grantee)
    return made
