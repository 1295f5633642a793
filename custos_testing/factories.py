"""factory_boy factories for cases, data-pull requests, decisions, grants, queries and alerts.

Two families, and the name says which one a test uses:

* ``…ActionFactory``: ``create()`` goes through the actions (``investigations.actions``), as a
  person would: every row comes with its ledger events, object permissions, memberships and
  notifications, and every rule of the action applies. Use these whenever a test relies on the
  ledger or on the real path (which is almost always). They cannot ``build()``.
* ``…RowFactory``: ``build()`` gives an unsaved row of the shape the actions give it, and
  ``custos_testing.bulk`` inserts many in a few statements: no action runs, no ledger event is
  written, no permission is given unless the caller adds it. Only for scale (thousands of rows,
  where walking each through the actions would take minutes and test nothing more) and for
  benchmarks. Foreign keys are never made for you: pass the saved rows they point to.

Personas (users with roles) come from ``custos_testing.personas.make_user`` (``PersonaFactory``
below is the same through factory_boy).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import factory
from django.utils import timezone
from factory.django import DjangoModelFactory

from accounts.models import User
from investigations.models import (
    Alert,
    Case,
    CaseStatus,
    DataPullRequest,
    DataQuery,
    Decision,
    Grant,
    QueryStatus,
    RequestStatus,
)

from .personas import make_user

JUSTIFICATION = "Needed to establish whether the account was used to exfiltrate the Q3 report."


def window(days: int = 30) -> tuple[date, date]:
    """The last ``days`` days, today included: (first day, today)."""
    end = timezone.now().date()
    return end - timedelta(days=days - 1), end


class _ActionFactory(factory.Factory):
    """``create()`` calls ``_act`` with the resolved fields; ``build()`` is refused (no action
    builds without saving)."""

    class Meta:
        abstract = True

    @classmethod
    def _build(cls, model_class, *args, **kwargs):
        raise TypeError(f"{cls.__name__} goes through the actions: use create(), or a …RowFactory to build rows")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return cls._act(**kwargs)

    @classmethod
    def _act(cls, **fields: Any):
        raise NotImplementedError


# --- through the actions (ledger events, permissions, notifications) ----------------------


class PersonaFactory(_ActionFactory):
    """A user made by ``accounts.actions.user_create`` with ``roles`` (enrolled with a second
    factor when a role needs one): ``PersonaFactory(roles=[Role.INVESTIGATOR])``."""

    class Meta:
        model = User

    username = factory.Sequence(lambda number: f"persona{number}")
    roles: Any = ()

    @classmethod
    def _act(cls, **fields: Any) -> User:
        return make_user(fields.pop("username"), list(fields.pop("roles")), **fields)


class CaseActionFactory(_ActionFactory):
    """A case opened by ``lead`` (``case_open``) with ``team``; approved by ``reviewer``
    (``case_approve``) when one is given, else left pending approval."""

    class Meta:
        model = Case

    lead: Any = None
    reviewer: Any = None
    team: Any = ()
    title = "Leak of the Q3 report"
    allegation = "The Q3 report reached a competitor before publication."
    case_type = "misconduct"
    purpose = "Establish which internal account shared the report."

    @classmethod
    def _act(cls, **fields: Any) -> Case:
        from investigations import actions

        lead, reviewer = fields.pop("lead"), fields.pop("reviewer")
        case = actions.case_open(actor=lead, team=list(fields.pop("team")), **fields)
        return actions.case_approve(actor=reviewer, case=case) if reviewer is not None else case


class RequestActionFactory(_ActionFactory):
    """A data-pull request filed on ``case`` by ``requested_by`` (``request_create``), on
    accounts 1 and 2, ip_logs and profile, over the last 30 days, for 24 hours; sent to legal
    (``request_submit``) when ``submitted``."""

    class Meta:
        model = DataPullRequest

    case: Any = None
    requested_by: Any = None
    submitted = False
    subjects: Any = ("1", "2")
    categories: Any = ("ip_logs", "profile")
    window_start = factory.LazyFunction(lambda: window()[0])
    window_end = factory.LazyFunction(lambda: window()[1])
    justification = JUSTIFICATION
    legal_basis = "internal_policy"
    duration_hours = 24

    @classmethod
    def _act(cls, **fields: Any) -> DataPullRequest:
        from investigations import actions

        actor, case, submitted = fields.pop("requested_by"), fields.pop("case"), fields.pop("submitted")
        fields["subjects"], fields["categories"] = list(fields["subjects"]), list(fields["categories"])
        request = actions.request_create(actor=actor, case=case, **fields)
        return actions.request_submit(actor=actor, request=request) if submitted else request


class GrantActionFactory(_ActionFactory):
    """The grant that ``reviewer`` gives by approving a submitted ``request``
    (``request_decide``): ``GrantActionFactory(request=submitted, reviewer=second_reviewer)``, or
    with a new request: ``GrantActionFactory(request__case=case, request__requested_by=lead, …)``."""

    class Meta:
        model = Grant

    request = factory.SubFactory(RequestActionFactory, submitted=True)
    reviewer: Any = None
    outcome = "approve"

    @classmethod
    def _act(cls, **fields: Any) -> Grant:
        from investigations import actions

        request = fields["request"]
        actions.request_decide(actor=fields["reviewer"], request=request, outcome=fields["outcome"])
        request.refresh_from_db()
        return request.grant


class QueryActionFactory(_ActionFactory):
    """A query on ``grant`` by ``user``, submitted and run in-process to completion
    (``query_execute_now``); other fields are the query's parameters."""

    class Meta:
        model = DataQuery

    grant: Any = None
    user: Any = None
    category = "ip_logs"

    @classmethod
    def _act(cls, **fields: Any) -> DataQuery:
        from investigations import actions

        return actions.query_execute_now(actor=fields.pop("user"), grant=fields.pop("grant"), **fields)


# --- rows written directly (bulk; no action, no ledger event) -----------------------------


class UserRowFactory(DjangoModelFactory):
    """A bare user row (no role, no second factor), found again by its username."""

    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda number: f"row-user-{number}")


class CaseRowFactory(DjangoModelFactory):
    """An open case row led by ``lead`` (no membership, no permission: see ``bulk.cases``)."""

    class Meta:
        model = Case

    reference = factory.Sequence(lambda number: f"ROW-{number:07d}")
    title = factory.Sequence(lambda number: f"Case {number}")
    allegation = "a"
    case_type = "fraud"
    purpose = "p"
    status = CaseStatus.OPEN
    lead: Any = None


class RequestRowFactory(DjangoModelFactory):
    """An approved request row on ``case`` by ``requested_by``: account 1, profile, the last
    four days, for one hour."""

    class Meta:
        model = DataPullRequest

    case: Any = None
    requested_by: Any = None
    status = RequestStatus.APPROVED
    subjects = factory.LazyFunction(lambda: [1])
    categories = factory.LazyFunction(lambda: ["profile"])
    window_start = factory.LazyFunction(lambda: timezone.now().date() - timedelta(days=3))
    window_end = factory.LazyFunction(lambda: timezone.now().date())
    justification = "j"
    legal_basis = "internal_policy"
    duration_hours = 1


class DecisionRowFactory(DjangoModelFactory):
    """``reviewer``'s approval of ``request`` in round 1, for the scope it asked."""

    class Meta:
        model = Decision

    request: Any = None
    reviewer: Any = None
    review_round = 1
    outcome = "approve"
    subjects = factory.LazyAttribute(lambda row: list(row.request.subjects))
    categories = factory.LazyAttribute(lambda row: list(row.request.categories))
    window_start = factory.LazyAttribute(lambda row: row.request.window_start)
    window_end = factory.LazyAttribute(lambda row: row.request.window_end)
    duration_hours = factory.LazyAttribute(lambda row: row.request.duration_hours)


class GrantRowFactory(DjangoModelFactory):
    """The grant row of ``request`` (its case and scope), active from an hour ago for a day
    (no grantee, no permission: see ``bulk.grants``)."""

    class Meta:
        model = Grant

    request: Any = None
    case = factory.LazyAttribute(lambda row: row.request.case)
    subjects = factory.LazyAttribute(lambda row: list(row.request.subjects))
    categories = factory.LazyAttribute(lambda row: list(row.request.categories))
    window_start = factory.LazyAttribute(lambda row: row.request.window_start)
    window_end = factory.LazyAttribute(lambda row: row.request.window_end)
    starts_at = factory.LazyFunction(lambda: timezone.now() - timedelta(hours=1))
    expires_at = factory.LazyAttribute(lambda row: row.starts_at + timedelta(hours=24))


class QueryRowFactory(DjangoModelFactory):
    """A succeeded ip_logs query row on ``grant`` by ``user`` (account 1, three rows)."""

    class Meta:
        model = DataQuery

    grant: Any = None
    user: Any = None
    category = "ip_logs"
    subjects = factory.LazyFunction(lambda: [1])
    status = QueryStatus.SUCCEEDED
    row_count = 3
    digest = "0" * 64


class AlertRowFactory(DjangoModelFactory):
    """An unacknowledged off-hours alert row (the event it names is not in the ledger)."""

    class Meta:
        model = Alert

    kind = "off_hours_query"
    severity = "info"
    event_seq = factory.Sequence(lambda number: 10_000 + number)
    event_at = factory.LazyFunction(timezone.now)
    summary = factory.Sequence(lambda number: f"Alert {number}")
