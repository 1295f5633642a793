"""Every page needs a login unless it is on the short list below."""

import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

# Pages an anonymous visitor may reach: logging in, the admin's own login (which sends to the
# login page), and the fixed page saying that an account is inactive (shown only after a
# sign-in). API endpoints answer 401 instead of redirecting; they are listed by prefix.
PUBLIC = {"accounts/login/", "admin/login/", "accounts/inactive/"}
API_PREFIX = "api/"
# The single sign-on round trip (accounts.sso), before any login: the button and the provider's
# callback (404 for a provider that is not configured, as "x" here), and the pages saying that
# it was cancelled or failed.
SIGN_ON = {
    "accounts/oidc/x/login/": 404,
    "accounts/oidc/x/login/callback/": 404,
    "accounts/sso/cancelled/": 200,
    "accounts/sso/error/": 401,
}
# API endpoints an anonymous caller may use: getting a token (POST only, so a GET is 405).
PUBLIC_API = {"api/v1/auth/token/"}
# Under the API prefix but a page for people: the interactive docs redirect to the login page.
API_PAGES = {"api/docs/"}
# For machines with their own credential (a bearer token or an allowed network), not a
# login: without it, 404 (tests/investigations/test_metrics.py).
MACHINE_ROUTES = {"metrics"}
# For load balancers and monitors: which dependency is up, nothing else (config/health.py).
HEALTH = "health"

CONVERTER_SAMPLES = {"int": "1", "str": "x", "slug": "x", "uuid": "00000000-0000-0000-0000-000000000001", "path": "x"}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern)


def _concrete(route: str) -> str | None:
    if "^" in route or "(?P" in route:  # regex routes (admin, API routers): sample what we can
        route = route.replace("^", "").replace("$", "")
        route = re.sub(r"\(\?P<\w+>[^)]*\)", "1", route)
        if any(char in route for char in "()[]*+?\\"):
            return None
        return route
    return re.sub(r"<(?:(\w+):)?\w+>", lambda match: CONVERTER_SAMPLES.get(match.group(1) or "str", "x"), route)


def all_routes() -> list[str]:
    routes = {_concrete(route) for route in _walk(get_resolver().url_patterns)}
    return sorted(route for route in routes if route is not None)


@pytest.mark.django_db
@pytest.mark.parametrize("route", [route for route in all_routes() if route != HEALTH])
def test_anonymous_visitor_is_sent_to_login(client, route):
    response = client.get("/" + route)
    if route in PUBLIC:
        assert response.status_code in (200, 302)
        return
    if route in SIGN_ON:
        assert response.status_code == SIGN_ON[route], f"/{route} answered {response.status_code}"
        return
    if route in MACHINE_ROUTES:
        assert response.status_code == 404, f"/{route} answered {response.status_code} without its credential"
        return
    if route in PUBLIC_API:
        assert response.status_code == 405, f"/{route} answered {response.status_code} to an anonymous GET"
        return
    if route.startswith(API_PREFIX) and route not in API_PAGES:
        assert response.status_code in (401, 403), f"/{route} answered {response.status_code} to an anonymous caller"
        return
    if route.endswith(".json"):  # a page's JSON (a status poll): 401 "signed out", never a login page
        assert response.status_code == 401 and response.json()["signed_out"] is True
        return
    assert response.status_code in (302, 301), f"/{route} answered {response.status_code} to an anonymous visitor"
    location = response.headers["Location"]
    assert "/login/" in location, f"/{route} redirected to {location}, not to a login page"


def test_the_route_list_is_not_empty():
    assert len(all_routes()) > 3


@pytest.mark.django_db(databases=["default", "userdata"])
def test_the_health_check_answers_without_a_login_and_names_only_dependencies(client):
    assert HEALTH in all_routes()
    response = client.get("/" + HEALTH)
    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ok", "dependencies": {"database": "ok", "userdata": "ok", "broker": "ok"}}
