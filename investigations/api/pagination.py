"""Keyset pages for the API's lists of cases, requests and grants.

The pages' own keyset (``views.listing.keyset_page``): a page is read after or before a cursor
holding the sort key and the primary key of the row at its edge, never by OFFSET, and nothing
is counted, so a page costs the same whatever the rows behind it. ``next`` and ``previous`` are
links with an opaque ``?after=`` or ``?before=``; a cursor this list did not give out (garbled,
hand-made, or of another ``sort``) is a 400 on that parameter. A cursor holds no right to a
row: the rows come from the ``access`` chokepoint, the cursor only says where to start.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from ..views.listing import BadCursor, KeysetPage, keyset_page

BAD_CURSOR = "Not a cursor of this list: follow the next or previous link of a page of it (with the same sort)."
CURSOR_HELP = "Opaque cursor from the {} link of a page; omit both for the first page."


class KeysetPagination(BasePagination):
    """``{"next", "previous", "results"}``, no count; ``API_PAGE_SIZE`` rows a page."""

    page: KeysetPage
    request: Any = None

    def paginate_queryset(self, queryset: QuerySet, request, view=None, fetch: Callable | None = None) -> list:
        self.request = request
        try:
            self.page = keyset_page(
                queryset,
                after=request.query_params.get("after"),
                before=request.query_params.get("before"),
                page_size=settings.REST_FRAMEWORK["PAGE_SIZE"],
                fetch=fetch,
                strict=True,
            )
        except BadCursor as error:
            raise ValidationError({str(error): [BAD_CURSOR]}) from None
        return list(self.page)

    def _link(self, name: str, cursor: str | None) -> str | None:
        if cursor is None:
            return None
        url = remove_query_param(self.request.build_absolute_uri(), "before" if name == "after" else "after")
        return replace_query_param(url, name, cursor)

    def get_paginated_response(self, data) -> Response:
        return Response(
            {
                "next": self._link("after", self.page.next_cursor),
                "previous": self._link("before", self.page.previous_cursor),
                "results": data,
            }
        )

    def get_paginated_response_schema(self, schema: dict) -> dict:
        link = {"type": "string", "format": "uri", "nullable": True}
        return {
            "type": "object",
            "required": ["next", "previous", "results"],
            "properties": {"next": link, "previous": link, "results": schema},
        }

    def get_schema_operation_parameters(self, view) -> list[dict]:
        return [
            {
                "name": name,
                "required": False,
                "in": "query",
                "description": CURSOR_HELP.format("next" if name == "after" else "previous"),
                "schema": {"type": "string"},
            }
            for name in ("after", "before")
        ]
