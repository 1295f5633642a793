"""The first-run demo: ``seed_demo`` tells a story through the actions, and each role's start page shows it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from accounts.roles import Role
from custos_testing.totp import fresh_code
from investigations.demo import DEMO_ACCOUNTS, JOURNALIST, seed_story
from investigations.management.commands.seed_demo import DEMO_PASSWORD
from investigations.models import Case, DataPullRequest, GrantReport, OutgoingMail, QueryStatus
from userdata.seed import describe_accounts, seed_userdata

from ..conftest import make_user

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

README = Path(settings.BASE_DIR) / "README.md"


@pytest.fixture
def cast(db):
    return {
        "ines": make_user("ines", [Role.INVESTIGATOR]),
        "omar": make_user("omar", [Role.INVESTIGATOR]),
        "lena": make_user("lena", [Role.LEGAL_REVIEWER]),
        "sam": make_user("sam", [Role.LEGAL_REVIEWER, Role.SENIOR_LEGAL_REVIEWER]),
        "aude": make_user("aude", [Role.AUDITOR]),
        "adam": make_user("adam", is_staff=True),
    }


@pytest.fixture
def story(cast, store):
    return seed_story(cast)


def test_the_story_has_a_case_in_each_state(story):
    pending, open_case, protected, closed = story
    assert [case.status for case in story] == ["pending_approval", "open", "open", "closed"]
    grant = open_case.grants.get()
    assert grant.status == "active"
    assert {query.status for query in grant.queries.all()} == {QueryStatus.SUCCEEDED}
    assert grant.queries.count() == 2
    assert open_case.requests.filter(status="submitted").count() == 1
    waiting = protected.requests.get()
    assert waiting.status == "submitted" and JOURNALIST in waiting.subjects
    assert [decision.reviewer.username for decision in waiting.decisions.all()] == ["lena"]
    assert GrantReport.objects.filter(grant__case=closed).exists()
    assert not pending.requests.exists()


def _page(client, user) -> str:
    client.force_login(user)
    return client.get(reverse("home")).content.decode()


def test_each_role_finds_its_part_of_the_story_on_its_start_page(story, cast, client):
    pending, open_case, protected, _closed = story
    second = open_case.requests.get(status="submitted")
    journalist = protected.requests.get()
    lena = _page(client, cast["lena"])
    assert pending.reference in lena
    assert reverse("investigations:request_detail", args=[second.pk]) in lena
    assert reverse("investigations:request_detail", args=[journalist.pk]) not in lena  # she gave her approval
    sam = _page(client, cast["sam"])
    assert reverse("investigations:request_detail", args=[journalist.pk]) in sam
    ines = _page(client, cast["ines"])
    assert reverse("investigations:grant_detail", args=[open_case.grants.get().pk]) in ines


def test_the_readme_names_the_accounts_the_demo_cases_name(store):
    # seed_demo's store: 500 accounts from seed 2026
    seed_userdata(accounts=500, seed=2026)
    readme = README.read_text()
    for account in describe_accounts(DEMO_ACCOUNTS):
        row = re.search(rf"^\| {account['id']} \| `([^`]+)` \| `([^`]+)` \| `([^`]+)` \|", readme, re.M)
        assert row, f"README lists no row for demo account {account['id']}"
        assert row.groups() == (account["handle"], account["email"], account["ip"])


@pytest.mark.skipif(not settings.EMBEDDED, reason="seed_demo runs only on the embedded default")
def test_seed_demo_prints_the_logins_last(capsys):
    call_command("seed_demo", accounts=40)
    output = capsys.readouterr().out.strip().splitlines()
    assert output[-13].startswith("Demo logins (password for all:")
    assert [line.split()[0] for line in output[-12:-6]] == ["ines", "omar", "lena", "sam", "aude", "adam"]
    # Then the authenticator-app secrets of the users whose role needs a second factor.
    assert output[-6].startswith("Second factor:")
    secrets = {line.split()[0]: line.split()[1] for line in output[-4:]}
    assert list(secrets) == ["lena", "sam", "aude", "adam"]
    client = Client()
    client.post(reverse("account_login"), {"login": "lena", "password": DEMO_PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": fresh_code(secrets["lena"])})
    assert client.get(reverse("home")).status_code == 200
    assert Case.objects.count() == 4 and DataPullRequest.objects.count() == 4
    assert not OutgoingMail.objects.exists()  # the story's e-mails are not left for the worker to print
    call_command("seed_demo", accounts=40)  # a second run changes nothing
    assert Case.objects.count() == 4
