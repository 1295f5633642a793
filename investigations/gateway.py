"""The only code that reads the user-data store.

Every read happens inside ``audited_access(...)``, which writes its ledger entry first: if
the ledger cannot be written, nothing is read.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import audit
from audit.actions import Action
from userdata.models import Account

_inside_gateway: contextvars.ContextVar[bool] = contextvars.ContextVar("custos_gateway", default=False)

USERDATA_ALIAS = "userdata"


def inside_gateway() -> bool:
    """True while the gateway is reading on behalf of an audited access (the test guard asks)."""
    return _inside_gateway.get()


@contextmanager
def audited_access() -> Iterator[None]:
    token = _inside_gateway.set(True)
    try:
        yield
    finally:
        _inside_gateway.reset(token)


@dataclass
class Resolution:
    """How the typed subject identifiers resolved to accounts of the user-data store."""

    accounts: list[int] = field(default_factory=list)
    found: list[dict] = field(default_factory=list)  # {"input": ..., "kind": ..., "accounts": [...]}
    unknown: list[str] = field(default_factory=list)


def _classify(identifier: str) -> str:
    return "account_id" if identifier.isdigit() else "handle"


def resolve_subjects(*, actor, identifiers: list[str], case_reference: str = "") -> Resolution:
    """Resolve account ids and handles to accounts, as an audited lookup.

    The lookup is recorded (who looked up what, on which case) before the store is read.
    """
    cleaned = [identifier.strip().removeprefix("@") for identifier in identifiers if identifier.strip()]
    audit.record(
        action=Action.SUBJECT_LOOKUP,
        actor=actor,
        case_reference=case_reference,
        details={"identifiers": cleaned},
    )
    ids = {int(identifier) for identifier in cleaned if _classify(identifier) == "account_id" and len(identifier) < 19}
    handles = {identifier.lower() for identifier in cleaned if _classify(identifier) == "handle"}
    with audited_access():
        by_id = set(Account.objects.using(USERDATA_ALIAS).filter(id__in=ids).values_list("id", flat=True))
        by_handle = dict(
            (handle.lower(), account_id)
            for handle, account_id in Account.objects.using(USERDATA_ALIAS)
            .filter(handle__in=[*handles, *(h for h in cleaned if _classify(h) == "handle")])
            .values_list("handle", "id")
        )
    resolution = Resolution()
    for identifier in cleaned:
        kind = _classify(identifier)
        if kind == "account_id" and len(identifier) < 19 and int(identifier) in by_id:
            account_ids = [int(identifier)]
        elif kind == "handle" and identifier.lower() in by_handle:
            account_ids = [by_handle[identifier.lower()]]
        else:
            resolution.unknown.append(identifier)
            continue
        resolution.found.append({"input": identifier, "kind": kind, "accounts": account_ids})
        for account_id in account_ids:
            if account_id not in resolution.accounts:
                resolution.accounts.append(account_id)
    return resolution
