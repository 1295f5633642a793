"""Cases, data-pull requests, decisions, grants and queries, split by sub-domain."""

from .alert import Alert, AlertKind, AlertSeverity, GrantReport, OversightCursor, SubjectMention
from .case import (
    Case,
    CaseGroupObjectPermission,
    CaseMember,
    CaseMembership,
    CaseNote,
    CasePriority,
    CaseReferenceCounter,
    CaseStatus,
    CaseType,
    CaseUserObjectPermission,
    Involvement,
    NoteVersion,
    Tag,
)
from .evidence import Evidence, EvidenceFormat, EvidenceKind, Integrity
from .grant import Grant, GrantGroupObjectPermission, GrantStatus, GrantUserObjectPermission
from .notification import Notification, NotificationKind, OutgoingMail
from .protected import ProposalKind, ProposalStatus, ProtectedCategory, ProtectedSubject, RegistryProposal
from .query import DataQuery, DenialReason, QueryResult, QueryStatus
from .report import CaseReport, ReportAudience
from .request import (
    DataPullRequest,
    Decision,
    DecisionOutcome,
    LegalBasis,
    RequestGroupObjectPermission,
    RequestStatus,
    RequestUserObjectPermission,
)
from .task import CaseTask, CaseTemplate, TaskStatus, TemplateTask

# The largest id a row can have (bigint): a larger number typed into a form or the API is a
# field error or not found, never a database error.
ID_MAX = 2**63 - 1

__all__ = [
    "ID_MAX",
    "Alert",
    "AlertKind",
    "AlertSeverity",
    "Case",
    "CaseGroupObjectPermission",
    "CaseMember",
    "CaseMembership",
    "CaseNote",
    "CasePriority",
    "CaseReferenceCounter",
    "CaseReport",
    "CaseStatus",
    "CaseTask",
    "CaseTemplate",
    "CaseType",
    "CaseUserObjectPermission",
    "DataPullRequest",
    "DataQuery",
    "Decision",
    "DecisionOutcome",
    "DenialReason",
    "Evidence",
    "EvidenceFormat",
    "EvidenceKind",
    "Grant",
    "GrantGroupObjectPermission",
    "GrantReport",
    "GrantStatus",
    "GrantUserObjectPermission",
    "Integrity",
    "Involvement",
    "LegalBasis",
    "NoteVersion",
    "Notification",
    "NotificationKind",
    "OutgoingMail",
    "OversightCursor",
    "ProposalKind",
    "ProposalStatus",
    "ProtectedCategory",
    "ProtectedSubject",
    "QueryResult",
    "QueryStatus",
    "RegistryProposal",
    "ReportAudience",
    "RequestGroupObjectPermission",
    "RequestStatus",
    "RequestUserObjectPermission",
    "SubjectMention",
    "Tag",
    "TaskStatus",
    "TemplateTask",
]
