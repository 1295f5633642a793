"""The first-run demo: four cases in the states a new user should see, built through the actions.

``seed_demo`` (embedded default only) calls :func:`seed_story` once, right after it created the
demo users, so every case, decision, grant, query and report below has its ledger events,
notifications and alerts exactly as if people had clicked through it:

- a case awaiting legal approval (Ines asks; Lena or Sam approves);
- an open case with a granted request, two finished queries and a second request in Lena's
  review queue;
- a leak case whose request names a journalist on the protected registry: Lena approved it,
  the senior reviewer (Sam) has the second approval to give;
- a closed case whose grant was revoked on closing, with its scope report.

The subjects are named by account id (resolved through the gateway's audited lookup, as typed
ones are); their handles, e-mails and IPs come from the user-data seed (``seed=2026``), and
``seed_demo`` prints them (the README lists them too).
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from accounts.models import User

from . import actions
from .actions import oversight
from .models import Case, TaskStatus

# Account ids the story names (every fifth account is an employee: 10, 15, 20, 25).
EMPLOYEES_EXPENSES = (10, 15)
EMPLOYEE_SECOND_REQUEST = 20
JOURNALIST = 7
EMPLOYEES_INCIDENT = (25, 30)
DEMO_ACCOUNTS = (7, 10, 15, 20, 25, 30)


def _window(days: int):
    end = timezone.now().date()
    return end - timedelta(days=days - 1), end


def _request(case: Case, actor: User, ids, categories, *, days=180, hours=72, basis="internal_policy", why: str):
    start, end = _window(days)
    request = actions.request_create(
        actor=actor,
        case=case,
        subjects=[str(account_id) for account_id in ids],
        categories=list(categories),
        window_start=start,
        window_end=end,
        justification=why,
        legal_basis=basis,
        duration_hours=hours,
    )
    return actions.request_submit(actor=actor, request=request)


def _grant(request, reviewer: User):
    actions.request_decide(actor=reviewer, request=request, outcome="approve")
    request.refresh_from_db()
    return request.grant


def _finish_tasks(case: Case, actor: User) -> None:
    for task in case.tasks.unfinished():
        actions.task_set_status(actor=actor, task=task, status=TaskStatus.DONE)


def _awaiting_approval(people: dict[str, User]) -> Case:
    return actions.case_open(
        actor=people["ines"],
        title="Harassment complaint in the Lisbon support team",
        allegation="A support agent reports repeated abusive messages from a team lead.",
        case_type="harassment",
        purpose="Establish whether the reported messages came from the team lead's work account.",
        priority="high",
        tags=["hr-referral"],
    )


def _open_with_queries(people: dict[str, User]) -> Case:
    ines, omar, lena = people["ines"], people["omar"], people["lena"]
    case = actions.case_open(
        actor=ines,
        title="Expense claims filed from abroad",
        allegation="Two employees filed travel expenses for trips their badge records contradict.",
        case_type="fraud",
        purpose="Compare where the two accounts signed in from with the claimed travel.",
        team=[omar],
        priority="medium",
        tags=["expenses", "travel"],
    )
    actions.case_approve(actor=lena, case=case)
    grant = _grant(
        _request(
            case,
            ines,
            EMPLOYEES_EXPENSES,
            ["ip_logs", "location"],
            why="The claims cover March to August; sign-in places in that period confirm or refute the trips.",
        ),
        lena,
    )
    actions.query_execute_now(actor=ines, grant=grant, category="ip_logs")
    actions.query_execute_now(actor=ines, grant=grant, category="location", subjects=[EMPLOYEES_EXPENSES[0]])
    _request(
        case,
        omar,
        [EMPLOYEE_SECOND_REQUEST],
        ["devices"],
        days=90,
        hours=48,
        why="A third employee approved both claims; the devices used would show whether they were shared.",
    )
    return case


def _protected_awaiting_senior(people: dict[str, User]) -> Case:
    omar, sam, lena = people["omar"], people["sam"], people["lena"]
    actions.protected_subject_add(
        actor=people["adam"], account_id=JOURNALIST, category="journalist", source="Press accreditation list"
    )
    case = actions.case_open(
        actor=omar,
        title="Board minutes published by a newspaper",
        allegation="Minutes of the May board meeting appeared in a newspaper two days after the meeting.",
        case_type="leak",
        purpose="Find which internal account shared the minutes.",
        priority="critical",
        tags=["press"],
    )
    actions.case_approve(actor=sam, case=case)
    request = _request(
        case,
        omar,
        [JOURNALIST],
        ["profile", "devices"],
        days=60,
        hours=24,
        basis="legal_process",
        why="A court order names the journalist's account as the recipient of the minutes.",
    )
    actions.request_decide(actor=lena, request=request, outcome="approve")
    return case


def _closed_with_report(people: dict[str, User]) -> Case:
    omar, sam = people["omar"], people["sam"]
    case = actions.case_open(
        actor=omar,
        title="Credential stuffing against staff accounts",
        allegation="Two staff accounts signed in from a known botnet range in one night.",
        case_type="security_incident",
        purpose="Confirm whether the two accounts were taken over.",
        priority="low",
    )
    actions.case_approve(actor=sam, case=case)
    grant = _grant(
        _request(
            case,
            omar,
            EMPLOYEES_INCIDENT,
            ["ip_logs", "devices"],
            days=30,
            hours=24,
            why="Sign-ins and devices of the two accounts over the last month show whether someone else used them.",
        ),
        sam,
    )
    actions.query_execute_now(actor=omar, grant=grant, category="ip_logs")
    _finish_tasks(case, omar)
    return actions.case_close(
        actor=omar, case=case, summary="One account was taken over and reset; the other was not affected."
    )


def seed_story(people: dict[str, User]) -> list[Case]:
    """Build the four demo cases, then let oversight read the ledger (alerts, the scope report)."""
    cases = [
        _awaiting_approval(people),
        _open_with_queries(people),
        _protected_awaiting_senior(people),
        _closed_with_report(people),
    ]
    oversight.alerts_scan()
    return list(Case.objects.filter(pk__in=[case.pk for case in cases]).order_by("pk"))
