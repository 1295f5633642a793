"""Shared fixtures: the cast of personas, environment detection, a real Celery worker.

Tests that need PostgreSQL, Redis, a worker or Chromium are marked (``postgres``, ``redis``,
``worker``, ``browser``) and skip with a reason when the environment lacks them, so that
``make test`` passes on a fresh machine; CI provides all of them, so nothing skips there.
"""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

from accounts.factors import second_factor_required
from accounts.models import User
from accounts.roles import Role
from custos_testing.personas import PASSWORD, enrol_totp, make_user, persona_secret
from custos_testing.worker import CeleryWorker

from .ledger_flush import allow_flush
from .userdata_guard import ACTIVE as ACTIVE_GUARDS
from .userdata_guard import UserDataGuard

# The personas are built in custos_testing (bench uses them too); tests import them from here.
__all__ = ["PASSWORD", "enrol_totp", "make_user", "persona_secret"]

# The investigation fixtures (cases, requests, grants, the user-data store) for every directory:
# the page, API, UI and browser tests act on the same objects. pytest takes pytest_plugins
# only from this top-level conftest.
pytest_plugins = ["tests.investigations.fixtures"]

allow_flush()  # transactional tests flush the database; the audit triggers refuse that otherwise


def on_postgres() -> bool:
    return settings.DATABASES["default"]["ENGINE"].endswith(".postgresql")


def on_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis")


def chromium_path() -> str | None:
    return os.environ.get("CUSTOS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config, items):
    reasons = {
        "postgres": None if on_postgres() else "needs PostgreSQL (set DATABASE_URL to a postgres:// URL)",
        "redis": None if on_redis() else "needs Redis (set CELERY_BROKER_URL to a redis:// URL)",
        "browser": None if chromium_path() else "needs Chromium (apt-get install chromium)",
    }
    # CI sets CUSTOS_REQUIRE=postgres,redis,browser: there, a missing environment is an error,
    # never a silent skip.
    required = {name for name in os.environ.get("CUSTOS_REQUIRE", "").split(",") if name}
    missing = sorted(name for name in required if reasons.get(name))
    if missing:
        raise pytest.UsageError("; ".join(reasons[name] for name in missing))
    for item in items:
        for marker, reason in reasons.items():
            if reason and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=reason))


# --- personas ----------------------------------------------------------------------------


def make_legacy_user(username: str, roles: list[str]) -> User:
    """A user holding roles that the separation of duties forbids, as a row from before the
    rule (or one written past the actions) would: the roles are written to the table directly,
    because no action sets them. Only for tests proving that the chokepoints refuse such a
    user anyway; ``check --deploy`` reports these rows.
    """
    from django.contrib.auth.models import Group

    user = make_user(username)
    user.groups.set(Group.objects.filter(name__in=[str(role) for role in roles]))
    user.__dict__.pop("role_names", None)
    if second_factor_required(user):
        enrol_totp(user)
    return user


@pytest.fixture
def lead(db) -> User:
    """The investigator who leads the case."""
    return make_user("lead", [Role.INVESTIGATOR])


@pytest.fixture
def member(db) -> User:
    """An investigator on the case team."""
    return make_user("member", [Role.INVESTIGATOR])


@pytest.fixture
def other_investigator(db) -> User:
    """An investigator who is not on the case."""
    return make_user("other_investigator", [Role.INVESTIGATOR])


@pytest.fixture
def reviewer(db) -> User:
    return make_user("reviewer", [Role.LEGAL_REVIEWER])


@pytest.fixture
def second_reviewer(db) -> User:
    return make_user("second_reviewer", [Role.LEGAL_REVIEWER])


@pytest.fixture
def senior_reviewer(db) -> User:
    return make_user("senior_reviewer", [Role.LEGAL_REVIEWER, Role.SENIOR_LEGAL_REVIEWER])


@pytest.fixture
def auditor(db) -> User:
    return make_user("auditor", [Role.AUDITOR])


@pytest.fixture
def admin_user(db) -> User:
    """Staff: manages users and roles; no role in the data path."""
    return make_user("admin", [], is_staff=True)


@pytest.fixture
def superuser(db) -> User:
    return make_user("root", [], is_staff=True, is_superuser=True)


@pytest.fixture
def outsider(db) -> User:
    """Logged in, no role at all."""
    return make_user("outsider", [])


@pytest.fixture
def inactive_user(db) -> User:
    return make_user("inactive", [Role.INVESTIGATOR], is_active=False)


def sign_in(client, user: User, password: str = PASSWORD):
    """Sign ``user`` in the real way: the password on the login page, then, for a user with an
    authenticator app, a TOTP code computed here. Returns the client."""
    from django.urls import reverse


    client.logout()  # a sign-in starts from no session (allauth sends a signed-in visitor away)
    response = client.post(reverse("account_login"), {"login": user.username, "password": password})
    assert response.status_code == 302, f"{user.username}: the password was refused"
    if response["Location"] == reverse("mfa_authenticate"):
        from tests.stepup import unused_code  # reads the codes allauth has already seen (the cache)

        response = client.post(reverse("mfa_authenticate"), {"code": unused_code(user)})
        assert response.status_code == 302, f"{user.username}: the TOTP code was refused"
    assert "_auth_user_id" in client.session
    return client


@pytest.fixture(autouse=True)
def fresh_cache():
    """Each test starts with an empty cache (this process's locmem): the TOTP codes allauth has
    seen used, throttle counters and lockout state must not leak from one test to the next. A
    persona's authenticator shares one secret across tests, so without this the fourth sign-in
    of a persona within one 30 s step found every accepted code used and waited for the next."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture(autouse=True)
def doorbells_open():
    """Each test starts with the doorbells open (``enqueue.ring``): a test does not inherit the
    quiet window of the one before, whose worker is gone and cannot run the scan again."""
    from investigations import enqueue

    enqueue.forget_rings()


@pytest.fixture
def deliver_mail():
    """What a worker does once a commit rings ``investigations.deliver_mail``: send the queued
    e-mails that are due. Returns Django's test outbox (locmem)."""
    from django.core import mail

    from investigations import notify

    def _deliver():
        notify.deliver_due()
        return mail.outbox

    return _deliver


@pytest.fixture(autouse=True)
def force_login_passes_the_second_factor(monkeypatch):
    """``Client.force_login`` stands for a whole sign-in: for a user with a second factor, that
    includes the factor, checked at that moment (so the step-up of ``accounts.stepup`` sees a
    recent check, as after a real sign-in). Tests of a stale check move it back in time
    (``tests.stepup.age_second_factor``)."""
    from django.test import Client

    from accounts.factors import has_second_factor

    from .stepup import check_second_factor_now

    force_login = Client.force_login

    def signed_in_with_the_factor(self, user, backend=None):
        force_login(self, user, backend)
        if has_second_factor(user):
            check_second_factor_now(self, user)

    monkeypatch.setattr(Client, "force_login", signed_in_with_the_factor)


@pytest.fixture
def login(client):
    """Sign a persona into the test client (password, then the second factor if enrolled):
    ``login(user)`` returns the client."""

    def _login(user: User):
        return sign_in(client, user)

    return _login


# --- an OpenID Connect identity provider -------------------------------------------------


@pytest.fixture(scope="session")
def identity_provider(tmp_path_factory):
    """The test identity provider (``tests/oidc_provider``): one real server process on
    127.0.0.1 for the whole session, its own SQLite file in a temporary folder."""
    from .oidc_provider.server import IdentityProvider

    provider = IdentityProvider(tmp_path_factory.mktemp("identity-provider")).start()
    try:
        yield provider
    finally:
        provider.stop()


# --- a real Celery worker ----------------------------------------------------------------


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real ``celery worker`` process on the configured broker and the test databases.

    Tests using it must commit their data (``transactional_db``) so that the worker, another
    process, sees it.
    """
    worker = CeleryWorker(log_path=tmp_path / "worker.log")
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


# --- the ledger's numbers ------------------------------------------------------------------


@pytest.fixture(autouse=True)
def ledger_numbers_from_one(request, django_db_setup, django_db_blocker):
    """On PostgreSQL the ledger's ``seq`` comes from a sequence, which a rolled-back test does not
    rewind: a test that starts with an empty ledger starts it at 1 again, as a fresh database does
    (the tests that write gaps on purpose make their own). Tests without the database are left alone."""
    marker = request.node.get_closest_marker("django_db")
    if marker is not None:
        databases = marker.kwargs.get("databases", ["default"])
        uses_database = databases == "__all__" or "default" in databases
    else:
        uses_database = bool({"db", "transactional_db"} & set(request.fixturenames))
    if not on_postgres() or not uses_database:
        return
    from django.db import connection

    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT setval('audit_auditevent_seq', 1, false) WHERE NOT EXISTS (SELECT FROM audit_auditevent)"
        )


# --- no bypass of the gateway --------------------------------------------------------------


@pytest.fixture(autouse=True)
def userdata_guard(request, django_db_setup, django_db_blocker):
    """Fail any test in which SQL reaches the user-data store outside the gateway.

    Depends on ``django_db_setup`` so the test databases exist (and were serialised) before
    the guard is armed; it is disarmed when teardown starts (``pytest_runtest_teardown``).
    """
    from django.db import connections

    guard = UserDataGuard()
    with django_db_blocker.unblock():
        connection = connections["userdata"]
    with connection.execute_wrapper(guard):
        guard.armed = True
        ACTIVE_GUARDS.append(guard)
        try:
            yield guard
        finally:
            guard.armed = False
            ACTIVE_GUARDS.remove(guard)
    if guard.violations:
        pytest.fail(
            "SQL reached the user-data store outside the gateway:\n" + "\n".join(guard.violations[:5]),
            pytrace=False,
        )


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_teardown(item):
    # The harness flushes the stores at teardown; that is not a read of user data.
    for guard in ACTIVE_GUARDS:
        guard.armed = False
