"""Every list page and every start page costs the same number of SQL queries for 10 and 500 rows.

Rows are bulk-inserted by the row factories (``custos_testing``; 500 of each through the actions
would take minutes); the personas and the case around them come from the actions, so visibility
is the real one.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

import audit
from audit.events import Action
from custos_testing.bulk import insert
from custos_testing.factories import (
    AlertRowFactory,
    CaseRowFactory,
    DecisionRowFactory,
    GrantRowFactory,
    QueryRowFactory,
    RequestRowFactory,
)
from investigations.models import (
    Case,
    CaseMember,
    CaseStatus,
    CaseUserObjectPermission,
    DataPullRequest,
    Grant,
    RequestStatus,
)
from tests.investigations.fixtures import JUSTIFICATION, window

pytestmark = pytest.mark.django_db

FEW, MANY = 10, 500
# Start pages show at most ten rows per section, so ten rows already fill them: a size below
# that catches a per-row query there too.
SIZES = (2, FEW, MANY)


class World:
    """Rows of every listed kind, topped up to a given number per kind."""

    def __init__(self, case: Case, lead, reviewer):
        self.case, self.lead, self.reviewer = case, lead, reviewer
        self.size = 0
        self.view_case = Permission.objects.get(codename="view_case", content_type__app_label="investigations")

    def grow_to(self, size: int) -> None:
        numbers = range(self.size, size)
        self._pending_cases(numbers)
        self._submitted_requests(numbers)
        self._grants_with_decisions_and_queries(numbers)
        for _ in numbers:
            audit.record(action=Action.CASE_NOTE_ADDED, actor=self.lead, case_reference=self.case.reference)
        self._alerts(numbers)
        self.size = size

    def _alerts(self, numbers) -> None:
        insert(
            AlertRowFactory.build(
                severity=("info", "warning", "critical")[number % 3],
                event_seq=10_000 + number,
                case=self.case,
                user=self.lead,
                summary=f"Alert {number}",
                acknowledged_by=self.reviewer if number % 2 else None,
                acknowledged_at=timezone.now() if number % 2 else None,
            )
            for number in numbers
        )

    def _pending_cases(self, numbers) -> None:
        cases = insert(
            CaseRowFactory.build(
                reference=f"INV-1999-{number:04d}",
                title=f"Bulk case {number}",
                allegation="Bulk.",
                purpose="Bulk.",
                status=CaseStatus.PENDING_APPROVAL,
                lead=self.lead,
            )
            for number in numbers
        )
        if connection.vendor == "sqlite":  # bulk_create returns no pks on older SQLite paths
            cases = list(Case.objects.filter(reference__in=[case.reference for case in cases]))
        insert(CaseMember(case=case, user=self.lead, is_lead=True) for case in cases)
        insert(
            CaseUserObjectPermission(content_object=case, user=self.lead, permission=self.view_case) for case in cases
        )

    def _request(self, status: str) -> DataPullRequest:
        start, end = window()
        return RequestRowFactory.build(
            case=self.case,
            requested_by=self.lead,
            status=status,
            subjects=[1, 2],
            categories=["ip_logs", "profile"],
            window_start=start,
            window_end=end,
            justification=JUSTIFICATION,
            duration_hours=24,
            review_round=1,
            submitted_at=timezone.now(),
        )

    def _submitted_requests(self, numbers) -> None:
        insert(self._request(RequestStatus.SUBMITTED) for _ in numbers)

    def _grants_with_decisions_and_queries(self, numbers) -> None:
        insert(self._request(RequestStatus.APPROVED) for _ in numbers)
        requests = list(DataPullRequest.objects.filter(status=RequestStatus.APPROVED, grant__isnull=True))
        now = timezone.now()
        insert(DecisionRowFactory.build(request=request, reviewer=self.reviewer) for request in requests)
        insert(
            GrantRowFactory.build(request=request, starts_at=now, expires_at=now + timedelta(hours=24))
            for request in requests
        )
        grants = list(Grant.objects.filter(request__in=requests))
        holders = Grant.grantees.through
        insert(holders(grant=grant, user=self.lead) for grant in grants)
        insert(QueryRowFactory.build(grant=grant, user=self.lead) for grant in grants)


@pytest.fixture
def world(open_case, lead, reviewer, second_reviewer) -> World:
    # second_reviewer decides the bulk requests so that `reviewer` (who approved the case) still
    # has every submitted one in their queue.
    return World(open_case, lead, second_reviewer)


def queries_for(client, url: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200, url
    return len(captured)


PAGES = {
    # persona fixture: the pages it lists things on
    "lead": ["home", "investigations:case_list", "investigations:grant_list"],
    "reviewer": ["home", "investigations:review_queue", "investigations:case_queue"],
    "second_reviewer": ["home", "investigations:decision_list"],
    "auditor": ["home", "audit:event_list", "investigations:alert_list"],
}


@pytest.mark.parametrize("persona", sorted(PAGES))
def test_list_pages_cost_the_same_for_10_and_500_rows(world, persona, request, client):
    user = request.getfixturevalue(persona)
    client.force_login(user)
    counts = []
    for size in SIZES:
        world.grow_to(size)
        counts.append({name: queries_for(client, reverse(name)) for name in PAGES[persona]})
    assert counts[0] == counts[1] == counts[2], f"{persona}: query counts changed with the rows {SIZES}: {counts}"


def test_the_rows_are_really_listed(world, lead, reviewer, second_reviewer, client):
    """The bulk rows are visible where counted, so the counts above measure full pages."""
    world.grow_to(30)
    client.force_login(lead)
    assert client.get(reverse("investigations:grant_list")).content.decode().count("Grant ") >= 25
    assert client.get(reverse("investigations:case_list")).content.decode().count("INV-1999-") >= 25
    home = client.get(reverse("home")).content.decode()
    assert "Open cases <span class=\"badge\">31</span>" in home  # 30 pending and the open one
    client.force_login(reviewer)
    assert client.get(reverse("investigations:review_queue")).content.decode().count("Request ") >= 25
    assert client.get(reverse("investigations:case_queue")).content.decode().count("INV-1999-") >= 25
    client.force_login(second_reviewer)
    assert client.get(reverse("investigations:decision_list")).content.decode().count("Request ") >= 25
