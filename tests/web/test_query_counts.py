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
    assert 'Open cases <span class="badge">31</span>' in home  # 30 pending and the open one
    client.force_login(reviewer)
    assert client.get(reverse("investigations:review_queue")).content.decode().count("Request ") >= 25
    assert client.get(reverse("investigations:case_queue")).content.decode().count("INV-1999-") >= 25
    client.force_login(second_reviewer)
    assert client.get(reverse("investigations:decision_list")).content.decode().count("Request ") >= 25


# --- keyset paging: the same statements on every page, every row exactly once ----------------

LISTS = {
    # page: (persona, row marker in the HTML, page size)
    "investigations:case_list": ("lead", "INV-1999-", 25),
    "investigations:grant_list": ("lead", "Grant ", 25),
    "investigations:review_queue": ("reviewer", "Request ", 25),
    "investigations:decision_list": ("second_reviewer", "Request ", 25),
    "investigations:alert_list": ("auditor", "Alert ", 50),
}


def _link(html: str, rel: str) -> str | None:
    import html as html_module
    import re

    found = re.search(rf'<a href="(\?[^"]*)" rel="{rel}">', html)
    return html_module.unescape(found.group(1)) if found else None


def _walk(client, url: str, query: str = "", rel: str = "next") -> tuple[list[list[int]], list[int]]:
    """Every page of a list by following its ``rel`` links: the pks per page and the statements per page."""
    pages, counts = [], []
    link = "?" + query if query else ""
    while link is not None:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url + link)
        assert response.status_code == 200, url + link
        counts.append(len(captured))
        pages.append([row.pk for row in response.context["page"].object_list])
        link = _link(response.content.decode(), rel)
        assert len(pages) < 100, "the links go round in circles"
    return pages, counts


@pytest.mark.parametrize("name", sorted(LISTS))
def test_keyset_pages_cost_the_same_on_every_page_and_list_every_row_once(world, name, request, client):
    persona, _marker, size = LISTS[name]
    client.force_login(request.getfixturevalue(persona))
    world.grow_to(2 * size + 7)  # three pages
    url = reverse(name)
    pages, counts = _walk(client, url, "state=all" if name.endswith("alert_list") else "")
    rows = [pk for page in pages for pk in page]
    assert len(pages) >= 3 and len(rows) == len(set(rows)), f"{name}: a row was listed twice: {pages}"
    assert len(set(counts)) == 1, f"{name}: statements per page changed along the list: {counts}"
    # Back from the last page by "Previous": the same pages in reverse.
    last = _link(client.get(url + "?" + ("state=all&" if name.endswith("alert_list") else "")).content.decode(), "next")
    while True:
        following = _link(client.get(url + last).content.decode(), "next")
        if following is None:
            break
        last = following
    back, back_counts = _walk(client, url, last.lstrip("?"), rel="prev")
    assert back == list(reversed(pages)) and set(back_counts) == set(counts)


@pytest.mark.parametrize("sort", ["status", "-status", "title", "-opened", "priority", "-priority", "lead", "type"])
def test_case_list_pages_by_keyset_in_every_column_order(world, lead, client, sort):
    """Sorting by a column with ties (status, lead, type: all equal) still lists each case once:
    the cursor holds (sort key, pk)."""
    from investigations.models import Case

    client.force_login(lead)
    world.grow_to(60)
    url = reverse("investigations:case_list")
    pages, counts = _walk(client, url, f"sort={sort}")
    rows = [pk for page in pages for pk in page]
    assert sorted(rows) == sorted(Case.objects.values_list("pk", flat=True)), sort
    assert len(set(counts)) == 1
    single = client.get(url, {"sort": sort}).context["page"].object_list
    assert [case.pk for case in single] == pages[0]


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage",
        "e30",  # {}
        "eyJvIjoiIiwiayI6W119",  # {"o":"","k":[]}
        "!!!",
        "x" * 5000,
    ],
)
def test_a_bad_cursor_shows_the_first_page_not_an_error(world, lead, client, cursor):
    client.force_login(lead)
    world.grow_to(30)
    url = reverse("investigations:case_list")
    first = [case.pk for case in client.get(url).context["page"].object_list]
    for parameter in ("after", "before"):
        response = client.get(url, {parameter: cursor})
        assert response.status_code == 200
        assert [case.pk for case in response.context["page"].object_list] == first


def test_a_forged_cursor_of_the_right_shape_with_wrong_types_shows_the_first_page(world, lead, client):
    """A cursor made by hand with the ordering's fingerprint but values its columns cannot take."""
    import re

    from investigations.views.listing import decode_cursor, encode_cursor

    client.force_login(lead)
    world.grow_to(30)
    url = reverse("investigations:case_list")
    response = client.get(url)
    real = re.search(r"after=([^\"&]+)", response.content.decode()).group(1)
    import base64
    import json

    signature = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))["o"]
    assert decode_cursor(real, signature, 2) is not None
    first = [case.pk for case in response.context["page"].object_list]
    for values in (["not a time", 5], [None, "not a number"], ["2026-01-01T00:00:00+00:00", 2**70]):
        forged = encode_cursor(signature, values)
        for parameter in ("after", "before"):
            again = client.get(url, {parameter: forged})
            assert again.status_code == 200
            assert [case.pk for case in again.context["page"].object_list] == first


def test_counts_stop_at_the_limit(world, lead, client, monkeypatch):
    from config import listing

    client.force_login(lead)
    world.grow_to(30)
    monkeypatch.setattr(listing, "COUNT_LIMIT", 20)
    assert "20+ cases." in client.get(reverse("investigations:case_list")).content.decode()
    monkeypatch.setattr(listing, "COUNT_LIMIT", 40)
    assert "31 cases." in client.get(reverse("investigations:case_list")).content.decode()


@pytest.mark.slow
def test_case_list_statements_are_the_same_for_10_and_10000_visible_cases(lead, client):
    """The scale the bench measures: a lead who sees 10 cases and one who sees 10,000; the
    10,000's second page too."""
    from accounts.roles import Role
    from tests.conftest import make_user

    view_case = Permission.objects.get(codename="view_case", content_type__app_label="investigations")
    big = make_user("big_lead", [Role.INVESTIGATOR])
    url = reverse("investigations:case_list")
    counts = []
    for person, size, prefix in ((lead, 10, "INV-1998-"), (big, 10_000, "INV-1997-")):
        Case.objects.bulk_create(
            Case(reference=f"{prefix}{number:05d}", title=f"Case {number}", allegation="a", case_type="fraud",
                 purpose="p", status=CaseStatus.OPEN, lead=person)
            for number in range(size)
        )  # fmt: skip
        cases = Case.objects.filter(reference__startswith=prefix)
        CaseUserObjectPermission.objects.bulk_create(
            CaseUserObjectPermission(content_object=case, user=person, permission=view_case) for case in cases
        )
        client.force_login(person)
        queries_for(client, url)  # warm (session, permissions cache)
        counts.append(queries_for(client, url))
    html = client.get(url).content.decode()
    assert "1000+ cases." in html
    second = url + _link(html, "next")
    counts.append(queries_for(client, second))
    assert len(client.get(second).context["page"].object_list) == 25
    assert counts[0] == counts[1] == counts[2], counts


# --- a viewer of many cases: the per-case test walks the newest-first index -------------------


@pytest.mark.parametrize(
    ("name", "sort"),
    [
        ("investigations:case_list", ""),
        ("investigations:case_list", "sort=title"),
        ("investigations:case_list", "sort=-priority"),
        ("investigations:grant_list", ""),
        ("investigations:grant_list", "sort=-expires"),
    ],
)
def test_a_viewer_of_many_rows_pages_through_the_same_rows(world, lead, client, monkeypatch, name, sort):
    """``access.cases_listed_for`` and ``grants_listed_for`` give a viewer of ``DENSE_VIEWER``
    rows or more the per-row test (on PostgreSQL): forwards and backwards the pages are those
    of the UNION, in the same statements."""
    from investigations import access

    client.force_login(lead)
    world.grow_to(60)
    url = reverse(name)
    union_pages, union_counts = _walk(client, url, sort)
    monkeypatch.setattr(access, "DENSE_VIEWER", 0)
    dense_pages, dense_counts = _walk(client, url, sort)
    assert dense_pages == union_pages and len(union_pages) >= 3
    assert set(dense_counts) == set(union_counts) and len(set(dense_counts)) == 1
    last = "?" + sort
    while (following := _link(client.get(url + last).content.decode(), "next")) is not None:
        last = following
    back, _ = _walk(client, url, last.lstrip("?"), rel="prev")
    assert back == list(reversed(dense_pages))


@pytest.mark.parametrize(
    ("name", "listing", "visible"),
    [
        ("investigations:case_list", "case_listing", "cases_visible_to"),
        ("investigations:grant_list", "grant_listing", "grants_visible_to"),
    ],
)
@pytest.mark.parametrize(("count_limit", "by_union"), [(1000, True), (-1, False)])
def test_a_viewer_of_many_rows_is_counted_in_the_cheaper_shape(
    world, lead, client, monkeypatch, name, listing, visible, count_limit, by_union
):
    """A viewer who pages by the per-row test is counted by the UNION of their permission rows
    while they hold fewer than sqrt(1,001 x the table's rows) (``access.Held.counts_by_union``),
    so 1,000 rows spread over a large table are not counted by walking all of it; past that, by
    the per-row test. Either way the page shows the same total."""
    from investigations import access

    world.grow_to(60)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE investigations_case, investigations_grant")
    monkeypatch.setattr(access, "DENSE_VIEWER", 0)
    # 1,000: the bound is sqrt(1,001 x the rows), above what the lead holds; -1: it is 0.
    monkeypatch.setattr(access, "COUNT_LIMIT", count_limit)
    shapes, union = getattr(access, listing)(lead), getattr(access, visible)(lead)
    if connection.vendor == "postgresql":
        assert str(shapes.rows.query) != str(union.query)
        counted_as = str(shapes.counted.query)
        assert counted_as == (str(union.query) if by_union else str(shapes.rows.query))
    expected = union.count()
    assert expected >= 60
    assert shapes.counted.count() == shapes.rows.count() == expected
    client.force_login(lead)
    response = client.get(reverse(name))
    assert response.context["total"] == expected


def test_a_cursor_from_a_case_the_viewer_cannot_see_reveals_nothing(world, lead, other_investigator, client):
    """A cursor holds a sort key and a pk, never a right to a row: made from another viewer's
    case, it only says where to start among the viewer's own cases."""
    import re

    world.grow_to(30)
    client.force_login(lead)
    url = reverse("investigations:case_list")
    cursor = re.search(r"after=([^\"&]+)", client.get(url).content.decode()).group(1)
    client.force_login(other_investigator)
    for parameter in ("after", "before"):
        response = client.get(url, {parameter: cursor})
        assert response.status_code == 200 and list(response.context["page"].object_list) == []
        assert "INV-1999-" not in response.content.decode()


def test_navigation_badges_stop_at_their_limit(world, reviewer, client, monkeypatch):
    from investigations import context_processors

    world.grow_to(30)
    client.force_login(reviewer)
    monkeypatch.setattr(context_processors, "BADGE_LIMIT", 5)
    assert (
        '<span class="badge warn">5+<span class="visually-hidden"> requests waiting'
        in client.get(reverse("home")).content.decode()
    )
