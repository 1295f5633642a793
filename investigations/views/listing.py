"""One way to list: a filter set over rows from an ``access`` chokepoint, sorted, paged and counted.

The cost is fixed whatever the rows: the page's rows, one COUNT of what matches, one COUNT of
everything the user could list.
"""

from __future__ import annotations

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet

from accounts.http import SignedInRequest

NOT_FILTERS = ("page", "sort")


def filtered_page(
    request: SignedInRequest, filter_class, visible: QuerySet, *, default_order: tuple[str, ...], page_size: int = 25
) -> dict:
    """Context for a list page: ``page``, ``filter``, ``total`` (before filtering) and ``filtered``."""
    listing = filter_class(request.GET, queryset=visible)
    rows = listing.qs if listing.is_valid() else visible.none()
    if not request.GET.get("sort"):
        rows = rows.order_by(*default_order)
    page: Page = Paginator(rows, page_size).get_page(request.GET.get("page"))
    return {
        "page": page,
        "filter": listing,
        "total": visible.count(),
        "filtered": any(value for name, value in request.GET.items() if name not in NOT_FILTERS),
    }
