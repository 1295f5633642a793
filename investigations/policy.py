"""Protected-request policy and purpose limits: what a request needs, from settings.

``CUSTOS["PROTECTED_POLICY"]`` says, per registry category, how many approvals a request
touching it needs, how many of them by senior legal reviewers, and which legal bases are
acceptable; ``CUSTOS["PURPOSE_LIMITS"]`` says, per case type, which data categories may be
asked about accounts that are not employees, and whether anything else is refused or
escalated to the protected policy. The actions in ``actions.request`` and ``actions.grant`` apply these rules;
pages only show them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from .models import DataPullRequest, LegalBasis, ProtectedSubject

PURPOSE_LIMIT = "purpose_limit"
MODES = ("refuse", "escalate")


@dataclass(frozen=True)
class Policy:
    approvals: int
    senior: int
    legal_bases: tuple[str, ...] | None  # None: any legal basis
    reasons: tuple[str, ...] = ()  # the registry categories (and "purpose_limit") that apply

    @property
    def legal_bases_text(self) -> str:
        labels = dict(LegalBasis.choices)
        return " or ".join(labels.get(basis, basis) for basis in self.legal_bases or ())


ORDINARY = Policy(approvals=1, senior=0, legal_bases=None)


def _configured(key: str) -> Policy:
    table = settings.CUSTOS["PROTECTED_POLICY"]
    rule = table.get(key, table["default"])
    bases = rule.get("legal_bases")
    return Policy(
        approvals=int(rule["approvals"]),
        senior=int(rule["senior"]),
        legal_bases=tuple(bases) if bases is not None else None,
        reasons=(key,),
    )


def policy_for(categories: Iterable[str], escalated: bool = False) -> Policy:
    """The strictest rule over the protected categories touched (and the escalation, if any)."""
    keys = sorted(set(categories)) + ([PURPOSE_LIMIT] if escalated else [])
    policy = ORDINARY
    for key in keys:
        rule = _configured(key)
        bases = policy.legal_bases
        if rule.legal_bases is not None:
            bases = rule.legal_bases if bases is None else tuple(b for b in bases if b in rule.legal_bases)
        policy = Policy(
            approvals=max(policy.approvals, rule.approvals),
            senior=max(policy.senior, rule.senior),
            legal_bases=bases,
            reasons=(*policy.reasons, key),
        )
    return policy


def request_policy(request: DataPullRequest) -> Policy:
    return policy_for(request.protected_categories, escalated=bool(request.purpose_limited))


def legal_basis_error(policy: Policy, legal_basis: str) -> str:
    """A field message when ``legal_basis`` is not acceptable under ``policy`` ("" when it is)."""
    if policy.legal_bases is None or legal_basis in policy.legal_bases:
        return ""
    if not policy.legal_bases:
        return "No legal basis is accepted for this combination of protected subjects; the request cannot proceed."
    why = ", ".join(reason.replace("_", " ") for reason in policy.reasons)
    return f"This request touches a protected subject ({why}); its legal basis must be {policy.legal_bases_text}."


def is_weaker(before: str, after: str) -> bool:
    """Whether moving a registry entry from category ``before`` to ``after`` lets a request touching
    it through with less: fewer approvals, fewer senior ones, or a legal basis ``before`` refused."""
    old, new = policy_for([before]), policy_for([after])
    if new.approvals < old.approvals or new.senior < old.senior:
        return True
    if old.legal_bases is None:
        return False
    return new.legal_bases is None or not set(new.legal_bases) <= set(old.legal_bases)


def cooling_days() -> int:
    return settings.CUSTOS["REGISTRY_COOLING_DAYS"]


# --- protected subjects ----------------------------------------------------------------------


def protected_accounts(subjects: Iterable[int], linked: dict) -> dict[int, str]:
    """{protected account: category} touched by ``subjects``, named or linked through an identifier.

    Protected means on the registry or removed from it less than the cooling period ago.
    """
    accounts = set(subjects) | {int(other) for others in linked.values() for other in others}
    return ProtectedSubject.objects.categories_of(accounts)


def protected_categories(subjects: Iterable[int], linked: dict) -> list[str]:
    return sorted(set(protected_accounts(subjects, linked).values()))


def protected_hits(request: DataPullRequest) -> list[dict]:
    """For the reviewer: each protected account touched, its category and how it was reached."""
    categories = protected_accounts(request.subjects, request.linked_subjects)
    hits = []
    for account, category in sorted(categories.items()):
        found_by = [entry["input"] for entry in request.subject_inputs if account in entry.get("accounts", [])]
        via = sorted(int(subject) for subject, others in request.linked_subjects.items() if account in others)
        hits.append({"account": account, "category": category, "found_by": found_by, "linked_via": via})
    return hits


# --- purpose limits ------------------------------------------------------------------------


@dataclass(frozen=True)
class PurposeLimit:
    case_type: str
    mode: str  # "refuse" or "escalate"
    categories: tuple[str, ...]  # requested categories beyond the limit
    subjects: tuple[int, ...]  # the non-employees they would be read about

    @property
    def message(self) -> str:
        subjects = ", ".join(map(str, self.subjects))
        return (
            f"A {self.case_type.replace('_', ' ')} case may not request {', '.join(self.categories)} about accounts "
            f"that are not employees ({subjects})."
        )


def purpose_limit(*, case_type: str, categories: Iterable[str], subjects: Iterable[int], employees) -> PurposeLimit:
    """What the case type's purpose limit says about this scope (``categories`` empty: nothing)."""
    rule = settings.CUSTOS["PURPOSE_LIMITS"].get(case_type)
    if rule is None:
        return PurposeLimit(case_type, "escalate", (), ())
    mode = rule.get("otherwise", "escalate")
    if mode not in MODES:
        raise ImproperlyConfigured(f"PURPOSE_LIMITS[{case_type!r}]['otherwise'] must be one of {MODES}, not {mode!r}.")
    non_employees = tuple(sorted(set(subjects) - set(employees)))
    allowed = set(rule.get("non_employee_categories", ()))
    beyond = tuple(sorted(category for category in set(categories) if category not in allowed))
    if not non_employees or not beyond:
        return PurposeLimit(case_type, mode, (), ())
    return PurposeLimit(case_type, mode, beyond, non_employees)
