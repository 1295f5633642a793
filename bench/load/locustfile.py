"""The load test's users: investigators, legal reviewers and one auditor on the REST API.

Each locust user signs in once as its own account (``POST /api/v1/auth/token/``, the real
way: reviewers and the auditor, whose roles need a second factor, send the ``otp`` of the
authenticator app the seed enrolled them with) and then works like a person at a desk, a few seconds between actions:

- investigators list their cases, open one, file and submit a new request now and then, and
  submit queries under their grant, polling each until it ends (the poll-to-end time is
  reported as ``query end to end``);
- legal reviewers read their review queue and decide a request from it (approve or reject);
- the auditor reads the ledger's newest events and, rarely, has the whole chain verified;
- everyone calls ``GET /api/v1/me/`` now and then: the trivial authenticated endpoint every
  other p95 is compared with.

What the database must then show is written as JSON lines to ``LOAD_OUT`` (one line per
accepted query, per decision and per server error), read back by ``python -m bench.load``.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
from datetime import date, timedelta

from locust import HttpUser, between, events, task

from bench.load import AT_SIGN_IN
from bench.load.seed import SUBJECTS, totp_secret, usernames
from custos_testing.totp import totp

PASSWORD = os.environ["LOAD_PASSWORD"]
USERS = int(os.environ.get("LOAD_USERS", "50"))
OUT = os.environ["LOAD_OUT"]
POLL_LIMIT = 60.0  # seconds a query may take before the poll gives up (and the run reports it)

_accounts = {role: itertools.cycle(names) for role, names in usernames(USERS).items()}
# Roles the seed enrolled with an authenticator app (CUSTOS_MFA_REQUIRED_ROLES' default).
SECOND_FACTOR_ROLES = {"legal_reviewer", "auditor"}

_signed_in = 0  # users signed in so far (locust's users are greenlets of one process)


def steady(name: str) -> str:
    """``name``, or ``name (at sign-in)`` while users are still signing in: the burst of password
    hashing slows every call made meanwhile, so those are reported apart (with the sign-in),
    for every endpoint alike, the trivial one included."""
    return name if _signed_in >= USERS else f"{name} {AT_SIGN_IN}"
# A code is accepted once per account: should two locust users share an account (more users of
# a role than accounts), the second takes a neighbouring step's code (one step each side is valid).
_used_codes: set[tuple[str, str]] = set()


def one_time_code(username: str) -> str:
    """A current TOTP code of ``username``'s enrolled secret that this run has not sent yet."""
    secret = totp_secret(username)
    while True:
        now = time.time()
        for shift in (0, -30, 30):
            code = totp(secret, now + shift)
            if (username, code) not in _used_codes:
                _used_codes.add((username, code))
                return code
        time.sleep(30 - now % 30 + 0.1)


def record(**fields) -> None:
    with open(OUT, "a") as out:
        out.write(json.dumps(fields) + "\n")


@events.request.add_listener
def _outcomes(request_type, name, exception=None, response=None, **kwargs) -> None:
    # ``query end to end`` is fired by hand, with no response: nothing to record for it here.
    if response is None:
        return
    if response.status_code == 0:  # no answer at all: the connection was reset, refused or timed out
        record(kind="no_answer", name=f"{request_type} {name}", error=repr(exception)[:300])
    elif response.status_code >= 500:
        record(
            kind="server_error", name=f"{request_type} {name}", status=response.status_code, body=response.text[:300]
        )
    elif response.status_code >= 400 and not getattr(response, "_race", False):
        record(
            kind="client_error", name=f"{request_type} {name}", status=response.status_code, body=response.text[:300]
        )


class Desk(HttpUser):
    abstract = True
    role = ""
    wait_time = between(1, 4)

    def on_start(self) -> None:
        self.username = next(_accounts[self.role])
        credentials = {"username": self.username, "password": PASSWORD}
        if self.role in SECOND_FACTOR_ROLES:
            credentials["otp"] = one_time_code(self.username)
        with self.client.post(
            "/api/v1/auth/token/",
            json=credentials,
            name="auth/token",
            catch_response=True,
        ) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {response.text[:200]}")
                raise RuntimeError(f"{self.username} could not sign in: {response.status_code} {response.text[:200]}")
        self.client.headers["Authorization"] = f"Token {response.json()['token']}"
        global _signed_in
        _signed_in += 1

    @task(2)
    def me(self) -> None:
        self.client.get("/api/v1/me/", name=steady("me (trivial)"))


class Investigator(Desk):
    role = "investigator"
    weight = 8

    def on_start(self) -> None:
        super().on_start()
        # Named apart: these run during the sign-in burst (every user hashing a password at once),
        # so they measure the burst; the tasks below measure the lists in the steady run.
        cases = self.client.get("/api/v1/cases/", name=f"cases {AT_SIGN_IN}").json()["results"]
        self.case_ids = [case["id"] for case in cases]
        grants = self.client.get("/api/v1/grants/", name=f"grants {AT_SIGN_IN}").json()["results"]
        self.grant_id = next(grant["id"] for grant in grants if grant["status"] == "active")

    @task(3)
    def list_cases(self) -> None:
        self.client.get("/api/v1/cases/", name=steady("cases"))

    @task(1)
    def list_grants(self) -> None:
        self.client.get("/api/v1/grants/", name=steady("grants"))

    @task(3)
    def open_case(self) -> None:
        self.client.get(f"/api/v1/cases/{random.choice(self.case_ids)}/", name=steady("cases/[id]"))

    @task(1)
    def file_request(self) -> None:
        end = date.today()
        response = self.client.post(
            "/api/v1/requests/",
            json={
                "case": self.case_ids[0],
                "subjects": [random.choice(SUBJECTS)],
                "categories": ["ip_logs"],
                "window_start": (end - timedelta(days=30)).isoformat(),
                "window_end": end.isoformat(),
                "justification": "A further month of sign-in addresses, to date the claimed trips.",
                "legal_basis": "internal_policy",
                "duration_hours": 24,
            },
            name=steady("requests"),
        )
        if response.status_code == 201:
            self.client.post(f"/api/v1/requests/{response.json()['id']}/submit/", name=steady("requests/[id]/submit"))

    @task(2)
    def query(self) -> None:
        started = time.monotonic()
        response = self.client.post(
            f"/api/v1/grants/{self.grant_id}/queries/", json={"category": "ip_logs"}, name=steady("grants/[id]/queries")
        )
        if response.status_code != 202:
            return
        query_id = response.json()["id"]
        record(kind="query", id=query_id, user=self.username)
        status = "queued"
        while time.monotonic() - started < POLL_LIMIT:
            self.wait_time_poll()
            status = self.client.get(f"/api/v1/queries/{query_id}/", name=steady("queries/[id]")).json()["status"]
            if status not in ("queued", "running"):
                break
        events.request.fire(
            request_type="QUERY",
            name=steady("query end to end"),
            response_time=(time.monotonic() - started) * 1000,
            response_length=0,
            exception=None if status == "succeeded" else RuntimeError(f"query {query_id} ended {status}"),
            context={},
        )

    def wait_time_poll(self) -> None:
        self._sleep(0.25)

    def _sleep(self, seconds: float) -> None:
        import gevent

        gevent.sleep(seconds)


class Reviewer(Desk):
    role = "legal_reviewer"
    weight = 2

    @task(4)
    def queue(self) -> None:
        items = self.client.get("/api/v1/reviews/", name=steady("reviews")).json()
        if not items:
            return
        item = random.choice(items[:10])
        outcome = random.choice(["approve", "approve", "reject"])
        body = {"decision": outcome, "reason": "" if outcome == "approve" else "Not needed for the allegation."}
        with self.client.post(
            f"/api/v1/requests/{item['id']}/decisions/",
            json=body,
            name=steady("requests/[id]/decisions"),
            catch_response=True,
        ) as response:
            if response.status_code in (200, 201):
                record(kind="decision", request=item["id"], user=self.username, outcome=outcome)
            elif response.status_code in (404, 409):
                # Another reviewer decided it first (the request left the queue): a race lost,
                # counted apart, not an error.
                response.success()
                response._race = True
                record(kind="race_lost", request=item["id"], status=response.status_code)


class Auditor(Desk):
    role = "auditor"
    fixed_count = 1

    @task(6)
    def events(self) -> None:
        self.client.get("/api/v1/audit/events/?page_size=50", name=steady("audit/events"))

    @task(1)
    def verify(self) -> None:
        self.client.get("/api/v1/audit/verify/", name=steady("audit/verify"))
