"""Every state change of cases, requests, grants and queries.

One function per change, named ``<thing>_<verb>``, keyword-only, ``actor`` first; each runs
in one transaction and writes its ledger entry inside it. Split by sub-domain.
"""

from .case import (
    case_add_member,
    case_approve,
    case_classify,
    case_close,
    case_hold,
    case_open,
    case_reject,
    case_remove_member,
    case_resubmit,
    case_resume,
    case_update,
)
from .evidence import (
    evidence_download,
    evidence_release,
    evidence_save_query_result,
    evidence_upload,
    evidence_verify,
    evidence_verify_due,
    evidence_view,
)
from .grant import case_revoke_grants, grant_revoke
from .note import case_add_note, note_edit
from .notification import notifications_mark_read, notify
from .protected import (
    protected_subject_add,
    protected_subject_change,
    protected_weakening_confirm,
    protected_weakening_propose,
    protected_weakening_withdraw,
    registry_viewed,
)
from .query import (
    purge_expired_results,
    query_execute_now,
    query_run,
    query_submit,
    requeue_stale_queries,
    results_download,
    results_view,
)
from .report import case_report_produce, case_report_read
from .request import (
    approval_problems,
    approvals_still_needed,
    lapse_overdue_requests,
    request_create,
    request_decide,
    request_lapse,
    request_submit,
    request_update,
    request_withdraw,
)
from .retention import case_legal_hold_lift, case_legal_hold_set, evidence_purge_due
from .task import case_template_set, task_create, task_set_status, task_update
from .user import user_deactivate

__all__ = [
    "approval_problems",
    "approvals_still_needed",
    "case_add_member",
    "case_add_note",
    "case_approve",
    "case_classify",
    "case_close",
    "case_hold",
    "case_legal_hold_lift",
    "case_legal_hold_set",
    "case_open",
    "case_reject",
    "case_remove_member",
    "case_report_produce",
    "case_report_read",
    "case_resubmit",
    "case_resume",
    "case_revoke_grants",
    "case_template_set",
    "case_update",
    "evidence_download",
    "evidence_purge_due",
    "evidence_release",
    "evidence_save_query_result",
    "evidence_upload",
    "evidence_verify",
    "evidence_verify_due",
    "evidence_view",
    "grant_revoke",
    "lapse_overdue_requests",
    "note_edit",
    "notifications_mark_read",
    "notify",
    "protected_subject_add",
    "protected_subject_change",
    "protected_weakening_confirm",
    "protected_weakening_propose",
    "protected_weakening_withdraw",
    "purge_expired_results",
    "query_execute_now",
    "query_run",
    "query_submit",
    "registry_viewed",
    "request_create",
    "request_decide",
    "request_lapse",
    "request_submit",
    "request_update",
    "request_withdraw",
    "requeue_stale_queries",
    "results_download",
    "results_view",
    "task_create",
    "task_set_status",
    "task_update",
    "user_deactivate",
]
