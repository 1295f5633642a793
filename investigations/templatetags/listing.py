"""Sortable column headings that keep the list's other filters in the URL."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

register = template.Library()


@register.simple_tag(takes_context=True)
def sort_heading(context, key: str, label: str) -> str:
    """A ``<th>`` whose link sorts by ``key`` (again: the other way), with ``aria-sort``."""
    request = context["request"]
    current = request.GET.get("sort", "")
    query = request.GET.copy()
    query.pop("page", None)
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
def page_query(context, number: int) -> str:
    """The current query string with another page number (filters and sorting kept)."""
    query = context["request"].GET.copy()
    query["page"] = number
    return query.urlencode()
