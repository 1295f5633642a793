"""No oracle before a decision (issue 16, section 2; invariant 10).

The property: what the case team receives about a draft or a pending request (its pages,
its API bodies, the answers to filing and submitting it) is identical whether a typed email,
phone, IP or device reaches none, one or many accounts, whether an account the team named
directly (a guess) is among them, and whether any account is protected or linked to a
protected one. Hypothesis builds pairs of worlds that differ in exactly one of those, files
the same draft in each (through the page and through the API), submits it, and compares
everything the requester gets back; only ids, timestamps and CSRF tokens are normalised.
Legal reviewers off the team must see the difference (else the pair proves nothing).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.actions.oversight import alerts_scan
from investigations.models import Alert, AlertKind, DataPullRequest
from tests.api.conftest import token_client
from userdata.models import Account, Device, LoginEvent
from userdata.seed import seeding

from .fixtures import JUSTIFICATION, open_case_for, window

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])

STORE = "userdata"
KINDS = ("email", "phone", "ip", "device")
BASES = ("internal_policy", "legal_process", "imminent_harm", "regulatory", "other")
_worlds = itertools.count(1)


@dataclass(frozen=True)
class Scenario:
    kind: str  # what the typed indirect identifier is
    behind: int  # accounts other than the guesses that the identifier reaches
    guesses: int  # accounts the team names directly
    by_handle: bool  # guesses typed as handles rather than ids
    identifier_first: bool
    difference: str  # "guess behind", "guess protected", "behind protected", "linked protected"
    category: str
    legal_basis: str
    leak_case: bool
    categories: tuple[str, ...]


def scenarios() -> st.SearchStrategy[Scenario]:
    return st.builds(
        Scenario,
        kind=st.sampled_from(KINDS),
        behind=st.integers(0, 3),
        guesses=st.integers(1, 3),
        by_handle=st.booleans(),
        identifier_first=st.booleans(),
        difference=st.sampled_from(["guess behind", "guess protected", "behind protected", "linked protected"]),
        category=st.sampled_from(["journalist", "lawyer", "elected_official", "minor"]),
        legal_basis=st.sampled_from(BASES),
        leak_case=st.booleans(),
        categories=st.sampled_from([("profile",), ("ip_logs", "profile"), ("location",), ("contacts", "devices")]),
    ).filter(lambda s: s.behind > 0 or s.difference in ("guess behind", "guess protected"))


# --- the user-data world -------------------------------------------------------------------


class World:
    """Fresh accounts for one example (ids far above any request or case id, so normalising
    ids cannot mistake one for the other): guesses, the accounts behind the identifier, and
    an account sharing a device with the first of those."""

    def __init__(self, scenario: Scenario):
        number = next(_worlds)
        self.base = 700_000 + number * 100
        self.scenario = scenario
        self.identifier = {
            "email": f"probe{number}@mail.example",
            "phone": f"+4917{number:07d}",
            "ip": f"10.{number // 250}.{number % 250}.7",
            "device": f"device:dev-probe-{number}",
        }[scenario.kind]
        self.guesses = [self.base + 1 + i for i in range(scenario.guesses)]
        self.behind = [self.base + 20 + i for i in range(scenario.behind)]
        self.linked = self.base + 50
        with seeding():
            for pk in [*self.guesses, *self.behind, self.linked]:
                self._account(pk)
            for pk in self.behind:
                self._reach(pk)
            if self.behind:
                for pk in (self.behind[0], self.linked):
                    self._device(pk, f"dev-link-{self.base}")

    def _account(self, pk: int) -> None:
        Account.objects.using(STORE).create(
            id=pk,
            handle=f"acct{pk}",
            display_name=f"Account {pk}",
            email=f"a{pk}@mail.example",
            phone=f"+3312{pk}",
            country="FR",
            created_at=timezone.now() - timedelta(days=500),
            is_employee=pk % 2 == 0,
        )

    def _device(self, pk: int, device_id: str) -> None:
        now = timezone.now()
        Device.objects.using(STORE).create(
            account_id=pk,
            device_id=device_id,
            model="Phone",
            os="OS",
            first_seen=now - timedelta(days=30),
            last_seen=now,
        )

    def _reach(self, pk: int) -> None:
        """Make the identifier reach account ``pk``."""
        kind, value = self.scenario.kind, self.identifier.removeprefix("device:")
        if kind in ("email", "phone"):
            Account.objects.using(STORE).filter(pk=pk).update(**{kind: value})
        elif kind == "device":
            self._device(pk, value)
        else:
            LoginEvent.objects.using(STORE).create(
                account_id=pk, ip=value, user_agent="Mozilla/5.0", occurred_at=timezone.now() - timedelta(days=3)
            )

    def make_different(self, admin) -> None:
        """Turn world B into world A: the one difference the team must not be able to see."""
        difference = self.scenario.difference
        if difference == "guess behind":
            with seeding():
                self._reach(self.guesses[0])
            return
        account = {
            "guess protected": self.guesses[0],
            "behind protected": self.behind[0] if self.behind else None,
            "linked protected": self.linked,
        }[difference]
        actions.protected_subject_add(actor=admin, account_id=account, category=self.scenario.category)

    def typed(self) -> list[str]:
        named = [f"acct{pk}" if self.scenario.by_handle else str(pk) for pk in self.guesses]
        return [self.identifier, *named] if self.scenario.identifier_first else [*named, self.identifier]


# --- what the requester receives, normalised --------------------------------------------------

_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?"
    r"|(\d{1,2}\s+[A-Z][a-z]{2,8}\.?\s+\d{4}|[A-Z][a-z]{2,8}\.?\s+\d{1,2},\s+\d{4}),\s+"
    r"(\d{1,2}(:\d{2})?\s+[ap]\.m\.|midnight|noon)"
)
_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
_MAIN = re.compile(r"<main\b.*?</main>", re.S)


def normalise(text: str, request_pk: int) -> str:
    """Only what legitimately differs: CSRF tokens, timestamps, and the request's own id where
    the page or body names the request (never any digit that happens to match it)."""
    text = _CSRF.sub('name="csrfmiddlewaretoken" value="CSRF"', text)
    text = _TIMESTAMP.sub("TIME", text)
    return re.sub(rf"(/requests/|[Rr]equest |#){request_pk}(?![0-9])", r"\1PK", text)


def page(client, url: str, pk: int) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return normalise(_MAIN.search(response.content.decode()).group(0), pk)


def body(response, pk: int) -> str:
    data = response.json()
    if isinstance(data, dict) and data.get("id") == pk:
        data["id"] = "PK"
    return f"{response.status_code} " + normalise(json.dumps(data, sort_keys=True), pk)


def _form(case, world: World | None, scenario: Scenario | None, **override) -> dict:
    start, end = override.get("start"), override.get("end")
    if start is None:
        start, end = window()
    legal_basis = scenario.legal_basis if scenario else "internal_policy"
    return {
        "subjects": override.get("subjects") or world.typed(),
        "categories": list(scenario.categories) if scenario else ["profile"],
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "justification": JUSTIFICATION,
        "legal_basis": legal_basis,
        "legal_basis_other": "Works council agreement 2026/4" if legal_basis == "other" else "",
        "duration_hours": 24,
    }


def team_sees(case, lead, client, world: World, scenario: Scenario) -> dict[str, str]:
    """Everything the requester receives while filing, reading, editing and submitting the draft."""
    api = token_client(lead)
    values = _form(case, world, scenario)
    seen = {}
    created = api.post("/api/v1/requests/", {"case": case.pk, **values}, format="json")
    if created.status_code != 201:  # refused: that alone must be the same in both worlds
        return {"api create": f"{created.status_code} {created.content.decode()}", "pk": None}
    pk = created.json()["id"]
    seen["api create"] = body(created, pk)
    seen["api detail"] = body(api.get(f"/api/v1/requests/{pk}/"), pk)
    seen["page detail"] = page(client, reverse("investigations:request_detail", args=[pk]), pk)
    seen["page edit"] = page(client, reverse("investigations:request_edit", args=[pk]), pk)
    seen["api submit"] = body(api.post(f"/api/v1/requests/{pk}/submit/", format="json"), pk)
    seen["api detail submitted"] = body(api.get(f"/api/v1/requests/{pk}/"), pk)
    seen["page detail submitted"] = page(client, reverse("investigations:request_detail", args=[pk]), pk)

    form = values | {"subjects": "\n".join(values["subjects"])}
    filed = client.post(reverse("investigations:request_create", args=[case.pk]), form)
    assert filed.status_code == 302, filed.content.decode()[:2000]
    page_pk = DataPullRequest.objects.filter(case=case).latest("pk").pk
    seen["page create"] = f"{filed.status_code} " + normalise(filed["Location"], page_pk)
    submitted = client.post(reverse("investigations:request_submit", args=[page_pk]), follow=True)
    seen["page submit"] = normalise(_MAIN.search(submitted.content.decode()).group(0), page_pk)
    return seen | {"pk": pk}


def reviewer_sees(reviewer, client, pk: int) -> str:
    client.force_login(reviewer)
    return page(client, reverse("investigations:request_detail", args=[pk]), pk)


@pytest.fixture
def cases(lead, member, reviewer):
    return {
        False: open_case_for(lead, reviewer, team=[member]),
        True: open_case_for(lead, reviewer, team=[member], case_type="leak"),
    }


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(scenario=scenarios())
def test_the_team_sees_the_same_whatever_the_identifiers_reach(
    scenario, cases, lead, reviewer, admin_user, client, store
):
    case = cases[scenario.leak_case]
    world = World(scenario)
    client.force_login(lead)
    before = team_sees(case, lead, client, world, scenario)
    world.make_different(admin_user)
    client.force_login(lead)
    after = team_sees(case, lead, client, world, scenario)
    assert before.keys() == after.keys()
    for channel in before:
        if channel != "pk":
            assert before[channel] == after[channel], f"{channel} differs for {scenario}"
    # The two worlds do differ, and legal off the team sees it: the comparison is not vacuous.
    assert reviewer_sees(reviewer, client, before["pk"]) != reviewer_sees(reviewer, client, after["pk"])


# --- probing is visible --------------------------------------------------------------------


def test_repeated_lookups_in_drafts_raise_one_oversight_alert(open_case, lead, admin_user, store, settings):
    settings.CUSTOS = {
        **settings.CUSTOS,
        "OVERSIGHT": {**settings.CUSTOS["OVERSIGHT"], "LOOKUP_PROBES": 3, "LOOKUP_WINDOW_MINUTES": 60},
    }
    start, end = window()
    fields = {
        "categories": ["profile"],
        "window_start": start,
        "window_end": end,
        "justification": JUSTIFICATION,
        "legal_basis": "internal_policy",
        "duration_hours": 24,
    }
    drafts = [
        actions.request_create(actor=lead, case=open_case, subjects=[f"10.0.0.{n}", "1"], **fields) for n in (1, 2)
    ]
    actions.request_withdraw(actor=lead, request=drafts[0])  # an abandoned draft's lookup still counts
    actions.request_update(actor=lead, request=drafts[1], subjects=["10.0.0.3", "1"], **fields)
    alerts_scan()
    assert not Alert.objects.filter(kind=AlertKind.IDENTIFIER_PROBING).exists()  # three lookups: not more than 3
    with pytest.raises(ValidationError):  # a refused draft (unknown handle) is looked up and recorded too
        actions.request_create(actor=lead, case=open_case, subjects=["10.0.0.4", "no_such_handle"], **fields)
    alerts_scan()
    (alert,) = Alert.objects.filter(kind=AlertKind.IDENTIFIER_PROBING)
    assert alert.user_id == lead.pk and alert.details["lookups"] == 4 and alert.case_id == open_case.pk
    lookups = AuditEvent.objects.filter(action=Action.SUBJECT_LOOKUP, actor_id=lead.pk)
    assert [event.details["identifiers"][0] for event in lookups.order_by("seq")] == [
        "10.0.0.1",
        "10.0.0.2",
        "10.0.0.3",
        "10.0.0.4",
    ]
    actions.request_create(actor=lead, case=open_case, subjects=["10.0.0.5", "1"], **fields)
    alerts_scan()
    assert Alert.objects.filter(kind=AlertKind.IDENTIFIER_PROBING).count() == 1  # one per user per window


def test_lookups_at_submission_are_not_probing(open_case, lead, store, settings):
    settings.CUSTOS = {
        **settings.CUSTOS,
        "OVERSIGHT": {**settings.CUSTOS["OVERSIGHT"], "LOOKUP_PROBES": 1, "LOOKUP_WINDOW_MINUTES": 60},
    }
    start, end = window()
    request = actions.request_create(
        actor=lead,
        case=open_case,
        subjects=["1"],
        categories=["profile"],
        window_start=start,
        window_end=end,
        justification=JUSTIFICATION,
        legal_basis="internal_policy",
        duration_hours=24,
    )
    actions.request_submit(actor=lead, request=request)  # the submission re-checks links: a lookup too
    alerts_scan()
    assert not Alert.objects.filter(kind=AlertKind.IDENTIFIER_PROBING).exists()


# --- the two attacks of the issue, spelled out -------------------------------------------------


def test_guessing_who_used_an_ip_learns_nothing(open_case, lead, store):
    """Today's binary search: IP plus a guessed account; the withheld count dropped by one when the
    guess had used the IP. Now the body is the same whether it did or not."""
    from .oversight_data import COLLEAGUE, IP, add_press_accounts

    add_press_accounts()  # 901 and 903 logged in from IP; account 2 did not
    api = token_client(lead)
    start, end = window()
    seen = []
    for guess in (str(COLLEAGUE), "2"):
        values = _form(open_case, None, None, subjects=[IP, guess], start=start, end=end)
        created = api.post("/api/v1/requests/", {"case": open_case.pk, **values}, format="json").json()
        seen.append({key: created[key] for key in ("subjects_withheld", "is_protected", "decisions", "status")})
        assert created["subjects"] == [int(guess)]
    assert seen[0] == seen[1] == {"subjects_withheld": True, "is_protected": None, "decisions": [], "status": "draft"}


def test_a_journalist_with_an_internal_policy_basis_is_not_named_to_the_team(
    open_case, lead, admin_user, reviewer, senior_reviewer, store, client
):
    """Today the draft was refused with a message naming the protected category (registry
    enumeration). Now the draft and the submission go through; no reviewer can approve it."""
    from .oversight_data import EMAIL, JOURNALIST, add_press_accounts

    add_press_accounts()
    actions.protected_subject_add(actor=admin_user, account_id=JOURNALIST, category="journalist")
    api = token_client(lead)
    start, end = window()
    values = _form(open_case, None, None, subjects=[EMAIL], start=start, end=end)
    created = api.post("/api/v1/requests/", {"case": open_case.pk, **values}, format="json")
    assert created.status_code == 201 and "journalist" not in created.content.decode()
    pk = created.json()["id"]
    submitted = api.post(f"/api/v1/requests/{pk}/submit/", format="json")
    assert submitted.status_code == 200 and submitted.json()["is_protected"] is None
    client.force_login(lead)
    page_text = client.get(reverse("investigations:request_detail", args=[pk])).content.decode()
    assert "journalist" not in page_text.lower() and "Protected-request policy" not in page_text
    request = DataPullRequest.objects.get(pk=pk)
    for approver in (reviewer, senior_reviewer):
        with pytest.raises(ValidationError) as error:
            actions.request_decide(actor=approver, request=request, outcome="approve")
        assert "journalist" in error.value.message_dict["outcome"][0]  # the reviewer is told why
    client.force_login(reviewer)
    assert (
        "Cannot be approved as it stands"
        in client.get(reverse("investigations:request_detail", args=[pk])).content.decode()
    )
