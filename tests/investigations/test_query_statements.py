"""A query costs two commits and a fixed number of statements, whatever its row count.

Counted on real transactions (BEGIN and COMMIT are statements here, as in production), on
both databases. The ledger's own statements are measured, not assumed: whatever an append
costs on this backend, the gateway adds a fixed number of its own around two appends.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import audit
from audit.events import Action
from investigations import actions
from investigations.models import QueryStatus
from userdata.models import LoginEvent

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]


def statements(call) -> list[str]:
    with (
        CaptureQueriesContext(connections["default"]) as main,
        CaptureQueriesContext(connections["userdata"]) as store,
    ):
        result = call()
    return [captured["sql"] for captured in (*main.captured_queries, *store.captured_queries)], result


def is_transaction_control(sql: str) -> bool:
    return sql.split()[0].upper() in {"BEGIN", "COMMIT", "SAVEPOINT", "RELEASE"}


def statements_per_append(actor) -> int:
    captured, _ = statements(lambda: _one_append(actor))
    return len([sql for sql in captured if not is_transaction_control(sql)])


def _one_append(actor) -> None:
    with transaction.atomic():
        audit.record(action=Action.QUERY_REQUESTED, actor=actor, details={"probe": True})


@pytest.fixture
def many_rows(wide_grant, userdata_guard):
    """1,000 more login events for account 1 inside the grant's window."""
    now = timezone.now()
    with userdata_guard.allow():
        LoginEvent.objects.using("userdata").bulk_create(
            LoginEvent(account_id=1, ip="192.0.2.1", user_agent="probe", occurred_at=now - timedelta(minutes=minute))
            for minute in range(1, 1001)
        )
    return wide_grant


def test_a_query_is_two_commits_and_at_most_ten_statements_whatever_its_rows(many_rows, lead, settings):
    settings.CUSTOS = {**settings.CUSTOS, "QUERY_ROW_CAP": 10_000}
    grant = many_rows
    today = timezone.now().date()
    cases = {  # rows differ by orders of magnitude; the statements must not
        "few": {"subjects": [2], "window_start": today - timedelta(days=20), "window_end": today},
        "some": {"subjects": [2, 3]},
        "many": {"subjects": [1, 2, 3]},
    }
    actions.query_execute_now(actor=lead, grant=grant, category="ip_logs", **cases["some"])  # warm caches
    per_append = statements_per_append(lead)
    counted = {}
    for name, parameters in cases.items():
        captured, query = statements(
            lambda parameters=parameters: actions.query_execute_now(
                actor=lead, grant=grant, category="ip_logs", **parameters
            )
        )
        assert query.status == QueryStatus.SUCCEEDED, query.error
        commits = [sql for sql in captured if sql.split()[0].upper() == "COMMIT"]
        assert len(commits) == 2, captured  # the attempt, then the run
        counted[name] = (len(captured), query.row_count)
    rows = [row_count for _, row_count in counted.values()]
    assert rows[0] < 50 and rows[2] > 1000, counted
    totals = {total for total, _ in counted.values()}
    assert len(totals) == 1, counted  # no growth with rows
    total = totals.pop()
    if connection.vendor == "postgresql":
        # query.requested and query.completed are written by the attempt's and the completion's
        # own statements (record_statement): no ledger append of their own
        assert total <= 8, (total, per_append)
    else:
        # SQLite has no data-modifying CTEs: the check and the INSERT, the UPDATE and the result, apart;
        # two ledger appends of their own, query.requested and query.completed
        own = total - 2 * per_append
        assert own <= 10


def test_a_refused_query_costs_one_commit(active_grant, lead, reviewer):
    from investigations.errors import QueryDenied

    actions.grant_revoke(actor=reviewer, grant=active_grant, reason="Revoked before the query.")

    def submit():
        with pytest.raises(QueryDenied):
            actions.query_submit(actor=lead, grant=active_grant, category="ip_logs")

    captured, _ = statements(submit)
    assert [sql for sql in captured if sql.split()[0].upper() == "COMMIT"] == ["COMMIT"]
