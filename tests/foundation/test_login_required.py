"""Every page needs a login unless it is on the short list below."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# Pages an anonymous visitor may reach: logging in, and the admin's own login (which then
# requires staff). API endpoints answer 401 instead of redirecting; they are listed by prefix.
PUBLIC = {"accounts/login/", "admin/login/"}
API_PREFIX = "api/"

CONVERTER_SAMPLES = {"int": "1", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000001", "path": "x"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str) -> str | None:
    if route.startswith("^") or "(?P" in route:  # regex routes (admin internals): sample what we can
        route = route.lstrip("^").rstrip("$")
        route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
        if any(char in route for char in "()[]*+?\\"):
            return None
        return route
    return re.sub(r"<(?:(\w+):)?\w+>", lambda match: CONVERTER_SAMPLES.get(match.group(1) or "str", "x"), route)


def all_routes() -> list[str]:
    routes = {_concrete(route) for route in _walk(get_resolver().url_patterns)}
    return sorted(route for route in routes if route is not None)


@pytest.mark.django_db
@pytest.mark.parametrize("route", all_routes())
def test_anonymous_visitor_is_sent_to_login(client, route):
    response = client.get("/" + route)
    if route in PUBLIC:
        assert response.status_code in (200, 302)
        return
    if route.startswith(API_PREFIX):
        assert response.status_code in (401, 403), f"/{route} answered {response.status_code} to an anonymous caller"
        return
    assert response.status_code in (302, 301), f"/{route} answered {response.status_code} to an anonymous visitor"
    location = response.headers["Location"]
    assert "/login/" in location, f"/{route} redirected to {location}, not to a login page"


def test_the_route_list_is_not_empty():
    assert len(all_routes()) > 3
