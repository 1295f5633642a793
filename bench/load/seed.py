"""Seed the load test's databases through the actions, as people would have built them.

Run by ``python -m bench.load`` in its own process (``python -m bench.load.seed USERS``):
- accounts ``load-inv-NNN`` (investigators), ``load-rev-NN`` (legal reviewers) and
  ``load-aud-1`` (auditor), created by ``user_create`` with the password in ``LOAD_PASSWORD``;
  the roles that must have a second factor (``CUSTOS_MFA_REQUIRED_ROLES``) are enrolled with an
  authenticator app whose secret is ``totp_secret(username)``, so that locust can compute the
  ``otp`` its sign-in sends;
- a small synthetic user-data store (``seed_userdata``, 500 accounts);
- per investigator: a case opened and approved by a reviewer, a request for two accounts'
  IP logs submitted and approved, so each investigator holds one active grant to query.
Nothing is written to a table directly: every row and ledger event comes from an action.
"""

from __future__ import annotations

import base64
import hashlib
import os
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

SUBJECTS = ["7", "10"]


def usernames(users: int) -> dict[str, list[str]]:
    """The accounts a run of ``users`` locust users signs in as (one account per user)."""
    return {
        "investigator": [f"load-inv-{index:03d}" for index in range(1, users + 1)],
        "legal_reviewer": [f"load-rev-{index:02d}" for index in range(1, users // 4 + 2)],
        "auditor": ["load-aud-1"],
    }


def totp_secret(username: str) -> str:
    """The known TOTP secret of a load account (a throwaway database's: derived from the name)."""
    return base64.b32encode(hashlib.sha256(f"custos-load-{username}".encode()).digest()[:20]).decode()


def seed(users: int, password: str) -> None:
    from django.db import transaction
    from django.test.utils import override_settings
    from django.utils import timezone

    from accounts import factors
    from accounts.actions import second_factor_enrol_totp, user_create
    from investigations import actions, notify
    from userdata.seed import seed_userdata, store_is_empty

    if store_is_empty():
        seed_userdata(accounts=500, seed=2026)
    people: dict[str, list] = {}
    for role, names in usernames(users).items():
        people[role] = [
            user_create(
                actor=None,
                username=name,
                password=password,
                first_name=name.split("-")[1].title(),
                last_name=name.split("-")[2],
                email=f"{name}@example.org",
                roles=[role],
                validate=False,
            )
            for name in names
        ]
        for person in people[role]:
            if factors.second_factor_required(person):
                second_factor_enrol_totp(actor=None, user=person, secret=totp_secret(person.username))
    reviewers = people["legal_reviewer"]
    end = timezone.now().date()
    # E-mails to reviewers go nowhere: the load test measures the web, the worker and the ledger.
    with override_settings(EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend"), notify.discarded():
        for index, investigator in enumerate(people["investigator"]):
            reviewer = reviewers[index % len(reviewers)]
            with transaction.atomic():
                case = actions.case_open(
                    actor=investigator,
                    title=f"Load case {index + 1}",
                    allegation="Expense claims that badge records contradict.",
                    case_type="fraud",
                    purpose="Compare sign-in places with the claimed travel.",
                )
                actions.case_approve(actor=reviewer, case=case)
                request = actions.request_create(
                    actor=investigator,
                    case=case,
                    subjects=SUBJECTS,
                    categories=["ip_logs"],
                    window_start=end - timedelta(days=89),
                    window_end=end,
                    justification="Sign-in addresses over the claimed trips.",
                    legal_basis="internal_policy",
                    duration_hours=72,
                )
                request = actions.request_submit(actor=investigator, request=request)
                actions.request_decide(actor=reviewer, request=request, outcome="approve")


def main() -> int:
    django.setup()
    seed(int(sys.argv[1]), os.environ["LOAD_PASSWORD"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
