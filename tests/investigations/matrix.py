"""Permission matrices written once, as text tables, and applied to every page and action.

A table's header names the columns: the row keys first (ending with the column named by
``key_columns``), then one column per persona. A cell is an HTTP status (``200``, ``302``,
``403``, ``404``, ``405``, ``409``) or ``login`` (a redirect to the login page). Blank lines
and lines starting with ``#`` are ignored. Extending a matrix to requests or grants means
adding a table and a way to build the object in each state.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.shortcuts import resolve_url

from audit.events import Action
from audit.models import AuditEvent

# The matrices' personas (columns) and the fixture of each (``None``: signed out).
FIXTURE_OF = {
    "lead": "lead",
    "member": "member",
    "other": "other_investigator",
    "reviewer": "reviewer",
    "auditor": "auditor",
    "admin": "admin_user",
    "super": "superuser",
    "anon": None,
    "inactive": "inactive_user",
}


def parse(table: str, key_columns: int) -> tuple[list[str], dict[tuple[str, ...], dict[str, str]]]:
    """The personas (columns) and ``{row key: {persona: expected}}``."""
    lines = [line.split() for line in table.strip().splitlines() if line.strip() and not line.startswith("#")]
    header, rows = lines[0], lines[1:]
    personas = header[key_columns:]
    parsed = {}
    for row in rows:
        assert len(row) == len(header), f"matrix row has {len(row)} cells, header {len(header)}: {row}"
        parsed[tuple(row[:key_columns])] = dict(zip(personas, row[key_columns:], strict=True))
    return personas, parsed


@dataclass
class Outcome:
    persona: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.persona}: expected {self.expected}, got {self.got}"


def observed(response) -> str:
    """``login`` for a redirect to the login page, else the status code."""
    if response.status_code == 302 and response["Location"].startswith(resolve_url(settings.LOGIN_URL)):
        return "login"
    return str(response.status_code)


def ledger_mark() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def events_since(mark: int) -> list[str]:
    return list(AuditEvent.objects.filter(seq__gt=mark).order_by("seq").values_list("action", flat=True))


def check_ledger(expected: str, events: list[str]) -> str | None:
    """A refusal leaves exactly one ``access.denied`` (403) or nothing at all (404, 409, login)."""
    if expected == "403" and events != [Action.ACCESS_DENIED]:
        return f"a 403 should record exactly one access.denied, recorded {events}"
    if expected in ("404", "409", "login", "405") and events:
        return f"a {expected} should record nothing, recorded {events}"
    return None
