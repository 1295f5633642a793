"""Oversight with a real worker: a journalist reached by an IP address, two approvals, then the
contacts query run by the worker returns ids and metadata only, and a contact's data is refused."""

from __future__ import annotations

import pytest

from audit.events import Action
from audit.models import AuditEvent
from custos_testing.worker import wait_for
from investigations import actions
from investigations.errors import QueryDenied
from investigations.models import DenialReason, Grant, QueryResult, QueryStatus

from .fixtures import file_request
from .oversight_data import COLLEAGUE, IP, JOURNALIST, add_press_accounts
from .test_query_worker import finished

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]


def test_journalist_by_ip_needs_two_approvals_and_contacts_stay_metadata(
    celery_worker_process, open_case, lead, reviewer, senior_reviewer, admin_user, store
):
    add_press_accounts()
    actions.protected_subject_add(actor=admin_user, account_id=JOURNALIST, category="journalist")
    # No oracle before a decision: the weak basis is not refused at the draft; the protected
    # policy holds the request back at the decision instead (test_no_oracle.py).
    weak = file_request(open_case, lead, subjects=[IP], categories=["contacts"])
    assert weak.protected_categories == ["journalist"]

    request = file_request(
        open_case, lead, subjects=[IP], categories=["contacts", "ip_logs"], legal_basis="imminent_harm"
    )
    assert sorted(request.subjects) == [JOURNALIST, COLLEAGUE] and request.protected_categories == ["journalist"]
    actions.request_submit(actor=lead, request=request)
    actions.request_decide(actor=reviewer, request=request, outcome="approve")
    assert not Grant.objects.exists()
    actions.request_decide(actor=senior_reviewer, request=request, outcome="approve")
    grant = Grant.objects.get(request=request)

    query = actions.query_submit(actor=lead, grant=grant, category="contacts")
    wait_for(lambda: finished(query), "the contacts query", celery_worker_process)
    query.refresh_from_db()
    assert query.status == QueryStatus.SUCCEEDED, query.error
    result = QueryResult.objects.get(query=query)
    assert result.columns == ["account_id", "contact_id", "kind", "created_at", "last_interaction_at"]
    assert {row[0] for row in result.rows} <= {JOURNALIST, COLLEAGUE}
    assert not AuditEvent.objects.filter(action=Action.QUERY_TRIPWIRE).exists()

    contacts = sorted({row[1] for row in result.rows} - {JOURNALIST, COLLEAGUE})
    assert 3 in contacts
    with pytest.raises(QueryDenied) as denied:
        actions.query_submit(actor=lead, grant=grant, category="ip_logs", subjects=[3])
    assert denied.value.query.denial_reason == DenialReason.OUT_OF_SCOPE_SUBJECT
