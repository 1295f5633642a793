"""Every state change of cases, requests, grants and queries.

One function per change, named ``<thing>_<verb>``, keyword-only, ``actor`` first; each runs
in one transaction and writes its ledger entry inside it. Split by sub-domain.
"""

from .case import case_add_member, case_approve, case_open
from .query import (
    purge_expired_results,
    query_execute_now,
    query_run,
    query_submit,
    requeue_stale_queries,
    results_download,
    results_view,
)
from .request import grant_revoke, request_create, request_decide, request_submit

__all__ = [
    "case_add_member",
    "case_approve",
    "case_open",
    "grant_revoke",
    "purge_expired_results",
    "query_execute_now",
    "query_run",
    "query_submit",
    "request_create",
    "request_decide",
    "request_submit",
    "requeue_stale_queries",
    "results_download",
    "results_view",
]
