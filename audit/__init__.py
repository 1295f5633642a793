"""The audit ledger. ``audit.record(...)`` and ``audit.record_many(...)`` are its only writers (``audit.ledger``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def record(
    *,
    action,
    actor=None,
    target=None,
    case_reference: str = "",
    details: dict[str, Any] | None = None,
    request=None,
):
    """Append one event inside the caller's transaction and return the AuditEvent."""
    from .ledger import record as _record

    return _record(
        action=action,
        actor=actor,
        target=target,
        case_reference=case_reference,
        details=details,
        request=request,
    )


def record_many(events: Iterable[Mapping[str, Any]], *, returning: bool = True):
    """Append events (each a dict of ``record``'s keyword arguments) with a fixed number of statements.

    Returns the AuditEvents, or None with ``returning=False`` (cheaper when unused).
    """
    from .ledger import record_many as _record_many

    return _record_many(events, returning=returning)
