"""The audit ledger. ``audit.record(...)`` is the only writer (see ``audit.ledger``)."""

from __future__ import annotations

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
