"""Cases, data-pull requests, decisions, grants and queries, split by sub-domain."""

from .case import (
    Case,
    CaseGroupObjectPermission,
    CaseMember,
    CaseNote,
    CaseReferenceCounter,
    CaseStatus,
    CaseType,
    CaseUserObjectPermission,
)
from .grant import Grant, GrantGroupObjectPermission, GrantStatus, GrantUserObjectPermission
from .protected import ProtectedCategory, ProtectedSubject
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
    "Case",
    "CaseGroupObjectPermission",
    "CaseMember",
    "CaseNote",
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
    "GrantStatus",
    "GrantUserObjectPermission",
    "LegalBasis",
    "ProtectedCategory",
    "ProtectedSubject",
    "QueryResult",
    "QueryStatus",
    "RequestGroupObjectPermission",
    "RequestStatus",
    "RequestUserObjectPermission",
]
