"""A small OpenID Connect identity provider for the tests (django-oauth-toolkit).

It runs as its own Django project in a subprocess on 127.0.0.1 (``server.IdentityProvider``,
started once per test session by the ``identity_provider`` fixture), with its own SQLite file
in a temporary folder and an RS256 key made at start. Custos signs in against it over real
HTTP: discovery, the authorisation endpoint with PKCE, the token endpoint, the JWKS and
userinfo. Nothing in it is mocked; the tests only decide who its users are.

Its users carry, besides username, e-mail and name, the groups the ``groups`` claim lists,
and whether they "used a second factor" at the provider, which the ``amr`` claim reports
(``["pwd", "otp"]`` or ``["pwd"]``), with an optional ``acr``.
"""
