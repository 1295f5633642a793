"""The API's lists of cases, requests and grants page by keyset (``investigations/api/pagination.py``):
every row once forwards and backwards, ties on the sort key included, rows added mid-way neither
repeated nor hiding others, no count; a bad cursor is a 400 on its parameter; a cursor opens no row."""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from custos_testing import bulk
from investigations import access
from investigations.models import Case
from investigations.views.listing import encode_cursor

from .conftest import token_client

pytestmark = pytest.mark.django_db

PAGE = 5


@pytest.fixture(autouse=True)
def small_pages(settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "PAGE_SIZE": PAGE}


def _cases(lead, count: int, prefix: str, *, created_at=None) -> list[int]:
    """``count`` cases ``lead`` sees; with ``created_at``, all opened at that instant (ties)."""
    bulk.cases(count, lead=lead, prefix=prefix)
    made = Case.objects.filter(reference__startswith=prefix)
    if created_at is not None:
        made.update(created_at=created_at)
    bulk.view_perms(lead, made)
    return list(made.values_list("pk", flat=True))


def _walk(client, url: str, link: str = "next") -> tuple[list[list[int]], list[int]]:
    """The ids of every page following ``link``, and the statements each page took."""
    pages, statements = [], []
    while url is not None:
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200, response.content
        body = response.json()
        assert set(body) == {"next", "previous", "results"}  # no count
        pages.append([row["id"] for row in body["results"]])
        statements.append(len(captured))
        url = body[link]
        assert len(pages) < 50, "the links go round in circles"
    return pages, statements


def _last_page_url(client, url: str) -> str:
    while (following := client.get(url).json()["next"]) is not None:
        url = following
    return url


@pytest.mark.parametrize("query", ["", "?sort=priority", "?status=open"])
def test_cases_page_forwards_and_back_with_ties_on_the_sort_key(lead, query):
    """Half the cases were opened at the same instant: the cursor's pk decides between them."""
    moment = timezone.now() - timedelta(days=1)
    ids = _cases(lead, 12, "TIE", created_at=moment) + _cases(lead, 11, "NEW")
    client = token_client(lead)
    url = "/api/v1/cases/" + query
    pages, statements = _walk(client, url)
    rows = [pk for page in pages for pk in page]
    assert sorted(rows) == sorted(ids) and len(rows) == len(set(rows)), pages
    assert len(pages) == 5 and all(len(page) == PAGE for page in pages[:-1])
    assert len(set(statements[1:])) == 1, statements  # the first request also signs the token in
    back, _ = _walk(client, _last_page_url(client, url), "previous")
    assert back == list(reversed(pages))
    assert client.get(url).json()["previous"] is None


def test_rows_added_mid_way_are_neither_repeated_nor_hide_others(lead):
    ids = _cases(lead, 12, "OLD", created_at=timezone.now() - timedelta(days=2))
    client = token_client(lead)
    first = client.get("/api/v1/cases/").json()
    added = _cases(lead, 7, "ADD")  # newer: they sort before the cursor, on pages already read
    pages, _ = _walk(client, first["next"])
    rows = [row["id"] for row in first["results"]] + [pk for page in pages for pk in page]
    assert sorted(rows) == sorted(ids) and not set(rows) & set(added)
    fresh = client.get("/api/v1/cases/").json()["results"]  # a new walk starts with them
    assert {row["id"] for row in fresh} <= set(added)


def test_grants_and_requests_page_by_keyset(lead, open_case):
    bulk.grants(13, case=open_case, grantee=lead, expires_at=timezone.now() + timedelta(days=1))
    client = token_client(lead)
    for resource, expected in (
        ("grants", set(access.grants_visible_to(lead).values_list("pk", flat=True))),
        ("requests", set(access.requests_visible_to(lead).values_list("pk", flat=True))),
    ):
        pages, _ = _walk(client, f"/api/v1/{resource}/")
        rows = [pk for page in pages for pk in page]
        assert len(rows) == len(set(rows)) and set(rows) == expected and len(expected) >= 13, resource
        back, _ = _walk(client, _last_page_url(client, f"/api/v1/{resource}/"), "previous")
        assert back == list(reversed(pages)), resource


def test_a_viewer_of_many_cases_gets_the_same_pages(lead, monkeypatch):
    """From ``DENSE_VIEWER`` cases on, the list tests each case (``access.cases_listed_for``):
    the same pages as the UNION."""
    _cases(lead, 8, "TIE", created_at=timezone.now() - timedelta(days=1))
    _cases(lead, 9, "NEW")
    client = token_client(lead)
    union, _ = _walk(client, "/api/v1/cases/")
    monkeypatch.setattr(access, "DENSE_VIEWER", 1)
    assert _walk(client, "/api/v1/cases/")[0] == union


def _signature_of(cursor: str) -> str:
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["o"]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "e30", "eyJvIjoiIiwiayI6W119", "!!!", "x" * 5000, "bm90IGpzb24"],
)
def test_a_bad_cursor_is_a_400_on_its_parameter(lead, cursor):
    _cases(lead, 3, "BAD")
    client = token_client(lead)
    for resource in ("cases", "requests", "grants"):
        for parameter in ("after", "before"):
            response = client.get(f"/api/v1/{resource}/", {parameter: cursor})
            assert response.status_code == 400, (resource, parameter, response.content)
            assert parameter in response.json(), response.json()


def test_a_forged_cursor_or_one_of_another_sort_is_a_400(lead):
    _cases(lead, 8, "FOR")
    client = token_client(lead)
    after = client.get("/api/v1/cases/").json()["next"].split("after=")[1]
    signature = _signature_of(after)
    for values in (["not a time", 5], [None, "not a number"], ["2026-01-01T00:00:00+00:00", 2**70]):
        response = client.get("/api/v1/cases/", {"after": encode_cursor(signature, values)})
        assert response.status_code == 400 and "after" in response.json()
    # a cursor of the newest-first order, used with another sort
    response = client.get("/api/v1/cases/", {"sort": "priority", "after": after})
    assert response.status_code == 400 and "after" in response.json()


def test_a_cursor_opens_no_row_the_caller_may_not_see(lead, other_investigator, outsider):
    """A cursor from the lead's list, or one made from the key of a case the caller cannot see,
    only says where to start among the caller's own rows."""
    theirs = _cases(lead, 8, "SEE")
    mine = _cases(other_investigator, 3, "OWN", created_at=timezone.now() - timedelta(days=3))
    lead_client = token_client(lead)
    after = lead_client.get("/api/v1/cases/").json()["next"].split("after=")[1]
    for caller, expected in ((other_investigator, set(mine)), (outsider, set())):
        client = token_client(caller)
        for parameter in ("after", "before"):
            body = client.get("/api/v1/cases/", {parameter: after}).json()
            assert not {row["id"] for row in body["results"]} & set(theirs)
            assert {row["id"] for row in body["results"]} <= expected
    # made by hand from the key of the lead's newest case: the other investigator's cases after it
    newest = Case.objects.get(pk=max(theirs))
    forged = encode_cursor(_signature_of(after), [newest.created_at, newest.pk])
    body = token_client(other_investigator).get("/api/v1/cases/", {"after": forged}).json()
    assert sorted(row["id"] for row in body["results"]) == sorted(mine)
    # a case list's cursor on the grant list is not one of its cursors
    response = token_client(outsider).get("/api/v1/grants/", {"after": after})
    assert response.status_code == 400 and "after" in response.json()
