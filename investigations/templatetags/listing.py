"""Sortable column headings that keep the list's other filters in the URL."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()

# The query parameters that say where in a list a page is (keyset cursors; ``page`` of old links).
PLACE = ("page", "after", "before")


@register.simple_tag(takes_context=True)
def sort_heading(context, key: str, label: str) -> str:
    """A ``<th>`` whose link sorts by ``key`` (again: the other way), with ``aria-sort``."""
    request = context["request"]
    current = request.GET.get("sort", "")
    query = request.GET.copy()
    for name in PLACE:  # a new order starts from its first page
        query.pop(name, None)
    if current == key:
        query["sort"], state, arrow = f"-{key}", "ascending", " ▲"
    elif current == f"-{key}":
        query["sort"], state, arrow = key, "descending", " ▼"
    else:
        query["sort"], state, arrow = key, "", ""
    sort_attr = format_html(' aria-sort="{}"', state) if state else ""
    return format_html(
        '<th scope="col"{}><a href="?{}">{}<span aria-hidden="true">{}</span></a></th>',
        sort_attr,
        query.urlencode(),
        label,
        arrow,
    )


@register.simple_tag(takes_context=True)
def page_query(context, after: str | None = None, before: str | None = None) -> str:
    """The current query string at another place in the list (filters and sorting kept): after
    or before a keyset cursor, or the first page with neither."""
    query = context["request"].GET.copy()
    for name in PLACE:
        query.pop(name, None)
    if after:
        query["after"] = after
    elif before:
        query["before"] = before
    return query.urlencode()
