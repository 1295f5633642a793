"""Every state change of cases, requests, grants and queries.

One function per change, named ``<thing>_<verb>``, keyword-only, ``actor`` first; each runs
in one transaction and writes its ledger entry inside it. Split by sub-domain.
"""

from .case import (
    case_add_member,
    case_add_note,
    case_approve,
    case_close,
    case_hold,
    case_open,
    case_reject,
    case_remove_member,
    case_resubmit,
    case_resume,
    case_update,
)
from .request import grant_revoke, request_create, request_decide, request_submit

__all__ = [
    "case_add_member",
    "case_add_note",
    "case_approve",
    "case_close",
    "case_hold",
    "case_open",
    "case_reject",
    "case_remove_member",
    "case_resubmit",
    "case_resume",
    "case_update",
    "grant_revoke",
    "request_create",
    "request_decide",
    "request_submit",
]
