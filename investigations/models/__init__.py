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
    Tag,
)
from .grant import Grant, GrantGroupObjectPermission, GrantStatus, GrantUserObjectPermission
from .notification import Notification, NotificationKind
from .protected import ProposalKind, ProposalStatus, ProtectedCategory, ProtectedSubject, RegistryProposal
from .query import DataQuery, DenialReason, QueryResult, QueryStatus
from .request import (
    DataPullRequest,
    Decision,
    DecisionOutcome,
    LegalBasis,
    RequestGroupObjectPermission,
    RequestStatus,
    RequestUserObjectPermission,
)

__all__ = [
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
    "CaseStatus",
    "CaseType",
    "CaseUserObjectPermission",
    "DataPullRequest",
    "DataQuery",
    "Decision",
    "DecisionOutcome",
    "DenialReason",
    "Grant",
    "GrantGroupObjectPermission",
    "GrantReport",
    "GrantStatus",
    "GrantUserObjectPermission",
    "Involvement",
    "LegalBasis",
    "Notification",
    "NotificationKind",
    "OversightCursor",
    "ProposalKind",
    "ProposalStatus",
    "ProtectedCategory",
    "ProtectedSubject",
    "QueryResult",
    "QueryStatus",
    "RegistryProposal",
    "RequestGroupObjectPermission",
    "RequestStatus",
    "RequestUserObjectPermission",
    "SubjectMention",
    "Tag",
]
