"""The query gateway: authorisation, denial records, the run lifecycle, fail-closed ledger."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerDown

from audit import ledger, sealer
from audit.events import Action
from audit.models import AuditEvent
from audit.verification import verify
from custos_testing import bulk
from investigations import actions, enqueue, gateway
from investigations.actions import query as query_actions
from investigations.errors import QueryDenied
from investigations.models import Case, CaseStatus, DataQuery, DenialReason, Grant, QueryResult, QueryStatus
from investigations.models.grant import db_now
from investigations.tasks import run_query
from tests.userdata_guard import UserDataBypass
from userdata.models import Account, LoginEvent

pytestmark = pytest.mark.django_db(databases=["default", "userdata"])


def events(action: str, query: DataQuery | None = None):
    found = AuditEvent.objects.filter(action=action)
    if query is not None:
        found = found.filter(target_type="investigations.dataquery", target_id=str(query.pk))
    return found


@pytest.fixture
def no_reads(monkeypatch):
    """Fail if the gateway reads user data."""

    def refuse(**kwargs):
        raise AssertionError("the gateway read user data")

    monkeypatch.setattr(gateway, "read_rows", refuse)


# --- happy path -------------------------------------------------------------------------


def test_submit_records_queued_and_enqueues_after_commit(
    wide_grant, lead, django_capture_on_commit_callbacks, monkeypatch
):
    sent = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
        assert query.status == QueryStatus.QUEUED
    assert len(callbacks) == 1
    monkeypatch.setattr(enqueue, "send", lambda task, *args: sent.append((task, list(args))))
    callbacks[0]()
    assert sent == [(enqueue.RUN_QUERY, [query.pk])]
    assert query.subjects == [1, 2, 3]
    assert (query.window_start, query.window_end) == (wide_grant.window_start, wide_grant.window_end)
    assert events(Action.QUERY_REQUESTED, query).count() == 1


def test_run_reads_stores_and_records_completion(succeeded_query, userdata_guard):
    query = succeeded_query
    assert query.status == QueryStatus.SUCCEEDED and query.attempts == 1
    result = QueryResult.objects.get(query=query)
    assert query.row_count == len(result.rows) > 0
    assert result.columns == ["account_id", "ip", "user_agent", "occurred_at"]
    assert {row[0] for row in result.rows} <= {1, 2, 3}
    assert query.digest == gateway.result_digest(result.columns, result.rows)
    with userdata_guard.allow():
        start = gateway._day_start(query.window_start)
        expected = LoginEvent.objects.filter(
            account_id__in=[1, 2, 3],
            occurred_at__gte=start,
            occurred_at__lt=gateway._day_start(query.window_end) + timedelta(days=1),
        ).count()
    assert query.row_count == expected
    for action in (Action.QUERY_REQUESTED, Action.QUERY_COMPLETED):
        assert events(action, query).count() == 1
    # Two commits: the attempt at submission, the run's completion; no separate start.
    assert not events(Action.QUERY_STARTED, query).exists()
    completed = events(Action.QUERY_COMPLETED, query).get()
    assert completed.details["digest"] == query.digest and completed.details["rows"] == query.row_count


def test_the_request_and_completion_events_are_the_ones_audit_record_writes(wide_grant, lead, settings):
    """On PostgreSQL ``query.requested`` is written by the attempt's INSERT statement and
    ``query.completed`` by the completion's (``audit.ledger.record_statement``); their content is
    what ``audit.record`` writes for the same arguments, in order, and they seal and verify."""
    settings.CUSTOS = {**settings.CUSTOS, "QUERY_ROW_CAP": 5}
    query = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs", subjects=[2, 1])
    query.refresh_from_db()
    requested, completed = events(Action.QUERY_REQUESTED, query).get(), events(Action.QUERY_COMPLETED, query).get()
    arguments = {"actor": lead, "target": query, "case_reference": wide_grant.case.reference}
    expected = {
        requested: ledger._payload(
            action=Action.QUERY_REQUESTED,
            **arguments,
            details={"grant": wide_grant.pk, "parameters": query.parameters()},
        ),
        completed: ledger._payload(
            action=Action.QUERY_COMPLETED,
            **arguments,
            details={
                "rows": 5,
                "truncated": True,
                "row_cap": 5,
                "digest": query.digest,
                "attempt": 1,
                "rows_by_subject": query.rows_by_subject,
            },
        ),
    }
    for stored, payload in expected.items():
        assert {name: getattr(stored, name) for name in ledger.PAYLOAD_FIELDS} == payload
    assert payload["target_id"] == str(query.pk) and query.parameters()["subjects"] == [2, 1]
    assert sum(query.rows_by_subject.values()) == 5 and query.digest
    assert requested.seq < completed.seq
    assert requested.occurred_at <= query.requested_at + timedelta(seconds=5)
    assert completed.occurred_at >= query.finished_at
    sealer.seal()
    assert verify().ok


def test_a_completion_of_a_query_no_longer_waiting_writes_nothing(wide_grant, lead):
    """The completion's UPDATE is conditional on the query still waiting, and the stored rows and
    the event hang on it: a run whose query was completed meanwhile adds neither."""
    query = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs")
    again = DataQuery.objects.select_related("grant__case", "user").get(pk=query.pk)
    again.clock = db_now()
    extract = gateway.read_rows(grant=again.grant, parameters=query_actions._parameters_of(again))
    with pytest.raises(query_actions._Superseded), transaction.atomic():
        query_actions._complete(again, extract)
    assert events(Action.QUERY_COMPLETED).count() == 1 and QueryResult.objects.count() == 1
    query.refresh_from_db()
    assert query.attempts == 1 and query.status == QueryStatus.SUCCEEDED


def test_digest_is_sha256_of_the_documented_canonical_encoding():
    import hashlib
    import json

    columns, rows = ["a", "b"], [[1, "é"], [2, None]]
    # Custos's one canonical encoding (audit.canonical), the ledger's: non-ASCII escaped.
    encoded = json.dumps({"columns": columns, "rows": rows}, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    assert "\\u00e9" in encoded
    assert gateway.result_digest(columns, rows) == hashlib.sha256(encoded.encode("ascii")).hexdigest()
    assert gateway.result_digest(columns, rows[:1]) != gateway.result_digest(columns, rows)


def test_subset_of_subjects_and_sub_window(wide_grant, lead):
    start = wide_grant.window_end - timedelta(days=100)
    query = actions.query_execute_now(
        actor=lead,
        grant=wide_grant,
        category="location",
        subjects=[2],
        window_start=start,
        window_end=wide_grant.window_end,
    )
    rows = query.result.rows
    assert query.status == QueryStatus.SUCCEEDED
    assert all(row[0] == 2 for row in rows)
    assert all(row[-1][:10] >= start.isoformat() for row in rows)


def test_read_applies_the_grants_own_filters_even_to_wider_parameters(wide_grant):
    wider = gateway.QueryParameters(
        "ip_logs", (1, 2, 3, 4, 5), wide_grant.window_start - timedelta(days=300), wide_grant.window_end
    )
    extract = gateway.read_rows(grant=wide_grant, parameters=wider)
    assert extract.rows and {row[0] for row in extract.rows} <= {1, 2, 3}
    assert min(row[3] for row in extract.rows)[:10] >= wide_grant.window_start.isoformat()


def test_row_cap_is_enforced_and_recorded(wide_grant, lead, settings):
    settings.CUSTOS = {**settings.CUSTOS, "QUERY_ROW_CAP": 3}
    query = actions.query_execute_now(actor=lead, grant=wide_grant, category="ip_logs")
    assert query.row_count == 3 and query.truncated
    assert len(query.result.rows) == 3
    details = events(Action.QUERY_COMPLETED, query).get().details
    assert details["truncated"] is True and details["row_cap"] == 3


# --- denials at submit --------------------------------------------------------------------


def _assert_one_denial(reason: str) -> DataQuery:
    query = DataQuery.objects.get()
    assert query.status == QueryStatus.DENIED and query.denial_reason == reason
    assert events(Action.QUERY_DENIED, query).count() == 1
    assert events(Action.QUERY_DENIED).count() == 1
    assert not QueryResult.objects.exists()
    assert not events(Action.QUERY_STARTED).exists()
    # PostgreSQL writes query.requested with the attempt, before the refusal: rolled back with it
    assert not events(Action.QUERY_REQUESTED).exists()
    return query


def _submit_denied(grant, user, **parameters) -> QueryDenied:
    with pytest.raises(QueryDenied) as denied:
        actions.query_submit(actor=user, grant=grant, **{"category": "ip_logs", **parameters})
    return denied.value


@pytest.mark.usefixtures("no_reads")
def test_grant_expired_one_second_ago_is_refused_without_the_expiry_task(active_grant, lead):
    # Time passes: the grant ran out a second ago; no expiry task has run (status still active).
    Grant.objects.filter(pk=active_grant.pk).update(expires_at=db_now() - timedelta(seconds=1))
    active_grant.refresh_from_db()
    assert active_grant.status == "active"
    error = _submit_denied(active_grant, lead)
    query = _assert_one_denial(DenialReason.GRANT_EXPIRED)
    assert error.query == query and "expired" in str(error)
    assert query.parameters()["category"] == "ip_logs"


@pytest.mark.usefixtures("no_reads")
def test_revoked_grant_is_refused(active_grant, lead, reviewer):
    actions.grant_revoke(actor=reviewer, grant=active_grant, reason="No longer justified.")
    _submit_denied(active_grant, lead)
    _assert_one_denial(DenialReason.GRANT_REVOKED)


@pytest.mark.usefixtures("no_reads")
def test_case_not_open_is_refused(active_grant, lead):
    # The case-closing action belongs to another part; its effect on the case row is what counts.
    Case.objects.filter(pk=active_grant.case_id).update(status=CaseStatus.ON_HOLD)
    _submit_denied(active_grant, lead)
    _assert_one_denial(DenialReason.CASE_CLOSED)


@pytest.mark.usefixtures("no_reads")
@pytest.mark.parametrize(
    "persona", ["member", "other_investigator", "auditor", "superuser", "admin_user", "inactive_user"]
)
def test_non_grantees_are_refused_whatever_their_role(active_grant, persona, request):
    user = request.getfixturevalue(persona)
    _submit_denied(active_grant, user)
    query = _assert_one_denial(DenialReason.NOT_GRANTEE)
    assert query.user == user


@pytest.mark.usefixtures("no_reads")
def test_subject_outside_the_grant_is_refused(active_grant, lead):
    _submit_denied(active_grant, lead, subjects=[1, 3])
    assert _assert_one_denial(DenialReason.OUT_OF_SCOPE_SUBJECT).subjects == [1, 3]


@pytest.mark.usefixtures("no_reads")
def test_category_outside_the_grant_is_refused(active_grant, lead):
    _submit_denied(active_grant, lead, category="location")
    _assert_one_denial(DenialReason.OUT_OF_SCOPE_CATEGORY)


@pytest.mark.usefixtures("no_reads")
def test_window_outside_the_grant_is_refused(active_grant, lead):
    _submit_denied(active_grant, lead, window_start=active_grant.window_start - timedelta(days=1))
    _assert_one_denial(DenialReason.OUT_OF_SCOPE_WINDOW)


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"category": "messages"}, "category"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 10**6}, "page_size"),
        ({"subjects": ["one"]}, "subjects"),
        ({"window_start": "2026-13-45"}, "window_start"),
        ({"window_end": "yesterday"}, "window_end"),
    ],
)
def test_bad_input_is_a_field_error_and_records_nothing(active_grant, lead, parameters, field):
    before = AuditEvent.objects.count()
    with pytest.raises(ValidationError) as error:
        actions.query_submit(actor=lead, grant=active_grant, **{"category": "ip_logs", **parameters})
    assert field in error.value.message_dict
    assert not DataQuery.objects.exists()
    assert AuditEvent.objects.count() == before


def test_reversed_window_is_a_field_error(active_grant, lead):
    with pytest.raises(ValidationError) as error:
        actions.query_submit(
            actor=lead,
            grant=active_grant,
            category="ip_logs",
            window_start=active_grant.window_end,
            window_end=active_grant.window_start,
        )
    assert "window_end" in error.value.message_dict
    assert not DataQuery.objects.exists()


# --- the worker's re-check and the run lifecycle -------------------------------------------


@pytest.mark.usefixtures("no_reads")
def test_revoked_while_queued_is_denied_by_the_run(active_grant, lead, reviewer):
    query = actions.query_submit(actor=lead, grant=active_grant, category="ip_logs")
    actions.grant_revoke(actor=reviewer, grant=active_grant, reason="Revoked while the query waited.")
    query = actions.query_run(query_id=query.pk)
    assert query.status == QueryStatus.DENIED and query.denial_reason == DenialReason.GRANT_REVOKED
    assert events(Action.QUERY_DENIED, query).get().details["stage"] == "run"
    assert not QueryResult.objects.exists() and not events(Action.QUERY_STARTED).exists()


@pytest.mark.usefixtures("no_reads")
def test_expired_while_queued_is_denied_by_the_run(active_grant, lead):
    query = actions.query_submit(actor=lead, grant=active_grant, category="ip_logs")
    Grant.objects.filter(pk=active_grant.pk).update(expires_at=db_now() - timedelta(seconds=1))
    assert actions.query_run(query_id=query.pk).denial_reason == DenialReason.GRANT_EXPIRED


def _remove_grantee(grant, user):
    grant.grantees.remove(user)


def _deactivate(grant, user):
    type(user).objects.filter(pk=user.pk).update(is_active=False)


def _grant_update(**changes):
    return lambda grant, user: Grant.objects.filter(pk=grant.pk).update(**changes)


def _case_update(**changes):
    return lambda grant, user: Case.objects.filter(pk=grant.case_id).update(**changes)


# Each change alone, made by hand between submission and run (no action, so nothing else an
# action would also do, such as revoking the grant, is what the run sees): the run reads the
# grant, its case and the user as they are at the claim, by the database clock, and refuses.
RUN_TIME_CHANGES = {
    "grantee removed": (_remove_grantee, DenialReason.NOT_GRANTEE),
    "user deactivated": (_deactivate, DenialReason.NOT_GRANTEE),
    "revoked_at set": (lambda grant, user: _grant_update(revoked_at=db_now())(grant, user), DenialReason.GRANT_REVOKED),
    "status revoked": (_grant_update(status="revoked"), DenialReason.GRANT_REVOKED),
    "status expired": (_grant_update(status="expired"), DenialReason.GRANT_EXPIRED),
    "case on hold": (_case_update(status=CaseStatus.ON_HOLD), DenialReason.CASE_CLOSED),
    "case closed": (_case_update(status=CaseStatus.CLOSED), DenialReason.CASE_CLOSED),
    "not started yet": (
        lambda grant, user: _grant_update(starts_at=db_now() + timedelta(hours=1))(grant, user),
        DenialReason.GRANT_EXPIRED,
    ),
}


@pytest.mark.usefixtures("no_reads")
@pytest.mark.parametrize("change", RUN_TIME_CHANGES)
def test_a_change_between_submission_and_run_is_refused_by_the_run(active_grant, lead, change):
    make, reason = RUN_TIME_CHANGES[change]
    query = actions.query_submit(actor=lead, grant=active_grant, category="ip_logs")
    make(active_grant, lead)
    query = actions.query_run(query_id=query.pk)
    assert query.status == QueryStatus.DENIED and query.denial_reason == reason
    assert events(Action.QUERY_DENIED, query).get().details["stage"] == "run"
    assert not QueryResult.objects.exists() and not events(Action.QUERY_COMPLETED).exists()
    query.refresh_from_db()
    assert query.status == QueryStatus.DENIED and query.denial_reason == reason


def test_the_run_sees_the_query_grant_case_and_user_as_stored(wide_grant, lead):
    """The claim hands the run the rows as they are stored (PostgreSQL: one hand-written
    statement; the same fields as the ORM loads, each in its place)."""
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs", subjects=[3, 1])
    with transaction.atomic():
        claimed = query_actions._claim(query.pk)
    stored = DataQuery.objects.select_related("grant__case", "user").get(pk=query.pk)
    for model, mine, theirs in ((DataQuery, claimed, stored), (Grant, claimed.grant, stored.grant)):
        for field in model._meta.concrete_fields:
            assert getattr(mine, field.attname) == getattr(theirs, field.attname), field.attname
    assert (claimed.grant.case.pk, claimed.grant.case.reference, claimed.grant.case.status) == (
        stored.grant.case.pk,
        stored.grant.case.reference,
        CaseStatus.OPEN,
    )
    assert (claimed.user.pk, claimed.user.get_username(), claimed.user.is_active) == (lead.pk, "lead", True)
    assert claimed.subjects == [3, 1] and claimed.window_start < claimed.window_end
    assert claimed.is_grantee is True and abs(claimed.clock - timezone.now()) < timedelta(minutes=1)


def test_a_second_delivery_does_nothing(wide_grant, lead):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    assert actions.query_run(query_id=query.pk).status == QueryStatus.SUCCEEDED
    assert actions.query_run(query_id=query.pk) is None
    assert run_query.run(query.pk, takeover=1) is None  # a message of an older release
    assert actions.query_run(query_id=10**9) is None
    assert events(Action.QUERY_COMPLETED, query).count() == 1 and QueryResult.objects.count() == 1


class Killed(BaseException):
    """What SIGKILL or a lost database does to a run: it stops mid-way, handling nothing."""


@pytest.mark.parametrize("where", ["read_rows", "result_digest"])
def test_a_run_that_dies_before_its_commit_leaves_the_query_waiting_with_nothing_stored(
    wide_grant, lead, monkeypatch, where
):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")

    def die(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(gateway, where, die)
        with pytest.raises(Killed):
            actions.query_run(query_id=query.pk)
    query.refresh_from_db()
    assert query.status == QueryStatus.QUEUED and query.row_count is None and query.digest == ""
    assert not QueryResult.objects.exists()
    assert not events(Action.QUERY_COMPLETED).exists() and not events(Action.QUERY_FAILED).exists()
    # Claimable at once: the next delivery completes it, once.
    assert actions.query_run(query_id=query.pk).status == QueryStatus.SUCCEEDED
    assert events(Action.QUERY_COMPLETED, query).count() == 1 and QueryResult.objects.count() == 1


def test_a_database_error_mid_run_is_retried_and_shows_the_query_retrying(wide_grant, lead, monkeypatch):
    from django.db import OperationalError

    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")

    def down(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    with monkeypatch.context() as patched:
        patched.setattr(gateway, "read_rows", down)
        with pytest.raises(OperationalError):  # the task's autoretry takes it from here
            actions.query_run(query_id=query.pk)
    query.refresh_from_db()
    assert query.status == QueryStatus.QUEUED and query.retrying and query.status_label == "Retrying"
    assert not QueryResult.objects.exists() and not events(Action.QUERY_FAILED).exists()
    query = actions.query_run(query_id=query.pk)
    assert query.status == QueryStatus.SUCCEEDED and query.attempts == 2 and not query.retrying


def test_the_sweeper_re_enqueues_waiting_queries_and_shows_them_retrying(wide_grant, lead, monkeypatch):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs", enqueue=False)
    assert query.status_label == "Queued"
    sent = []
    monkeypatch.setattr(enqueue, "send", lambda task, *args: sent.append(list(args)))
    assert actions.requeue_stale_queries().queued == 0  # not yet stale
    assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 1 and sent == [[query.pk]]
    query.refresh_from_db()
    assert query.status == QueryStatus.QUEUED and query.status_label == "Retrying"


# --- fail closed ------------------------------------------------------------------------


def _ledger_refuses(refused: str) -> None:
    """The ledger's table refuses events of ``refused`` (a trigger of the test's transaction),
    whichever statement writes them: ``audit.record``'s INSERT or one folded into the action's own
    statement (``audit.ledger.record_statement``)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION pg_temp.ledger_refuses() RETURNS trigger LANGUAGE plpgsql "
                "AS $$ BEGIN RAISE EXCEPTION 'ledger unavailable'; END $$"
            )
            cursor.execute(
                "CREATE TRIGGER ledger_refuses BEFORE INSERT ON audit_auditevent FOR EACH ROW "
                f"WHEN (NEW.action = '{refused}') EXECUTE FUNCTION pg_temp.ledger_refuses()"
            )
        else:
            cursor.execute(
                "CREATE TEMP TRIGGER ledger_refuses BEFORE INSERT ON audit_auditevent "
                f"WHEN NEW.action = '{refused}' BEGIN SELECT RAISE(ABORT, 'ledger unavailable'); END"
            )


def test_ledger_failure_at_completion_releases_nothing(wide_grant, lead):
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    _ledger_refuses(Action.QUERY_COMPLETED)
    query = actions.query_run(query_id=query.pk)
    assert query.status == QueryStatus.FAILED and "ledger unavailable" in query.error
    assert not QueryResult.objects.exists() and query.digest == "" and query.row_count is None
    assert not events(Action.QUERY_COMPLETED).exists()
    assert events(Action.QUERY_FAILED, query).count() == 1
    with pytest.raises(PermissionDenied):
        actions.results_view(actor=lead, query=query, page=1)


def test_ledger_failure_at_submit_records_nothing(wide_grant, lead):
    _ledger_refuses(Action.QUERY_REQUESTED)
    with pytest.raises(DatabaseError, match="ledger unavailable"):
        actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    assert not DataQuery.objects.exists()


# --- broker down ------------------------------------------------------------------------


def test_broker_down_at_submit_leaves_the_query_queued_for_the_sweeper(
    wide_grant, lead, monkeypatch, django_capture_on_commit_callbacks
):
    def down(*args, **kwargs):
        raise BrokerDown("Error 111 connecting to 127.0.0.1:1. Connection refused.")

    monkeypatch.setattr(enqueue, "send", down)
    with django_capture_on_commit_callbacks(execute=True):
        query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
    assert query.enqueue_failed is True
    assert DataQuery.objects.get(pk=query.pk).status == QueryStatus.QUEUED
    sent = []
    monkeypatch.setattr(enqueue, "send", lambda task, *args: sent.append(list(args)))
    assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 1
    assert sent == [[query.pk]]


# --- results ----------------------------------------------------------------------------


def test_results_view_and_download_are_audited(succeeded_query, lead):
    result = actions.results_view(actor=lead, query=succeeded_query, page=2)
    assert result.rows
    actions.results_download(actor=lead, query=succeeded_query)
    assert events(Action.RESULTS_VIEWED, succeeded_query).get().details["page"] == 2
    assert events(Action.RESULTS_DOWNLOADED, succeeded_query).count() == 1


@pytest.mark.parametrize("persona", ["member", "auditor", "superuser", "admin_user", "outsider"])
def test_no_role_sees_rows(succeeded_query, persona, request):
    user = request.getfixturevalue(persona)
    with pytest.raises(PermissionDenied):
        actions.results_view(actor=user, query=succeeded_query, page=1)
    assert not events(Action.RESULTS_VIEWED).exists()


def test_revoked_grant_hides_results(succeeded_query, lead, reviewer):
    actions.grant_revoke(actor=reviewer, grant=succeeded_query.grant, reason="Abuse suspected.")
    succeeded_query.refresh_from_db()
    assert "revoked" in query_actions.results_problem(lead, succeeded_query)


def test_expired_grant_results_are_unreadable_at_once_and_purged_after_retention(succeeded_query, lead):
    grant = succeeded_query.grant
    Grant.objects.filter(pk=grant.pk).update(expires_at=db_now() - timedelta(seconds=1))
    succeeded_query.refresh_from_db()
    assert "ended" in query_actions.results_problem(lead, succeeded_query)
    assert actions.purge_expired_results() == 0  # stored, unreadable, until the retention period is over


def test_purge_deletes_rows_after_retention_and_keeps_the_digest(succeeded_query):
    assert actions.purge_expired_results() == 0
    Grant.objects.filter(pk=succeeded_query.grant_id).update(expires_at=db_now() - timedelta(days=31))
    assert actions.purge_expired_results() == 1
    succeeded_query.refresh_from_db()
    assert not QueryResult.objects.exists()
    assert len(succeeded_query.digest) == 64 and succeeded_query.row_count
    assert events(Action.RESULTS_PURGED, succeeded_query).count() == 1


# --- no bypass --------------------------------------------------------------------------


def test_the_guard_catches_a_deliberate_bypass(store, userdata_guard):
    with pytest.raises(UserDataBypass):
        list(Account.objects.filter(id=1))
    with pytest.raises(UserDataBypass), connections["userdata"].cursor() as cursor:
        cursor.execute("SELECT handle FROM userdata_account")
    assert len(userdata_guard.violations) == 2
    userdata_guard.violations.clear()  # proven; keep this test itself green


def test_the_guard_is_armed_in_every_test(userdata_guard):
    assert userdata_guard.armed
    assert userdata_guard in connections["userdata"].execute_wrappers


def test_the_gateway_reads_inside_its_audited_context(wide_grant, monkeypatch):
    seen = []
    real = gateway.audited_access

    def spy():
        seen.append(True)
        return real()

    monkeypatch.setattr(gateway, "audited_access", spy)
    gateway.read_rows(
        grant=wide_grant,
        parameters=gateway.QueryParameters("ip_logs", (1,), wide_grant.window_start, wide_grant.window_end),
    )
    assert seen == [True]


@contextmanager
def held_by_another_transaction(lock: Callable[[], object]):
    """Inside: another connection's open transaction holds the row locks ``lock`` takes
    (a concurrent run, a revocation in progress); they are released on leaving."""
    held, release = threading.Event(), threading.Event()

    def other_transaction() -> None:
        with transaction.atomic():
            lock()
            held.set()
            release.wait(30)
        connections.close_all()

    thread = threading.Thread(target=other_transaction)
    thread.start()
    try:
        assert held.wait(30)
        yield
    finally:
        release.set()
        thread.join()


@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="row locks: PostgreSQL")
def test_a_query_another_run_holds_is_not_waited_for_and_not_failed(wide_grant, lead, migrated_rows):
    """A second delivery while a run holds the query: asked again later (the task retries), never failed."""
    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs", enqueue=False)
    with held_by_another_transaction(lambda: DataQuery.objects.select_for_update().get(pk=query.pk)):
        with pytest.raises(query_actions.RunInProgress):
            actions.query_run(query_id=query.pk)
        assert actions.requeue_stale_queries(queued_after=timedelta(0)).queued == 0  # held: not re-sent
    query.refresh_from_db()
    assert query.status == QueryStatus.QUEUED and query.attempts == 0
    assert actions.query_run(query_id=query.pk).status == QueryStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="row locks: PostgreSQL")
def test_the_claim_locks_the_query_only(wide_grant, lead, migrated_rows):
    """Another transaction holding the grant, its case and the user (a revocation, a case
    change, a sign-in in progress) neither blocks the run nor makes it skip the query: the claim
    locks the query's row alone; the re-check reads the others as last committed."""
    from accounts.models import User

    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs", enqueue=False)

    def lock_the_others() -> None:
        Grant.objects.select_for_update().get(pk=wide_grant.pk)
        Case.objects.select_for_update().get(pk=wide_grant.case_id)
        User.objects.select_for_update().get(pk=lead.pk)

    with held_by_another_transaction(lock_the_others):
        assert actions.query_run(query_id=query.pk).status == QueryStatus.SUCCEEDED


@pytest.mark.django_db(transaction=True, databases=["default", "userdata"])
@pytest.mark.skipif(connections["default"].vendor != "postgresql", reason="a second session: PostgreSQL")
def test_the_attempt_is_committed_before_any_row_is_read(wide_grant, lead, migrated_rows, monkeypatch):
    """Invariant 4, seen from another session: when the read starts, the query and its
    ``query.requested`` are committed; its completion and rows are not, until the run commits."""
    import psycopg

    seen = {}
    real_read = gateway.read_rows
    settings_dict = connections["default"].settings_dict

    def read_rows(**kwargs):
        with psycopg.connect(
            host=settings_dict["HOST"],
            port=settings_dict["PORT"] or 5432,
            user=settings_dict["USER"],
            dbname=settings_dict["NAME"],
            password=settings_dict["PASSWORD"] or None,
        ) as other:
            seen["requested"] = other.execute(
                "SELECT count(*) FROM audit_auditevent WHERE action = %s AND target_id = %s",
                [Action.QUERY_REQUESTED, str(query.pk)],
            ).fetchone()[0]
            seen["status"] = other.execute(
                "SELECT status FROM investigations_dataquery WHERE id = %s", [query.pk]
            ).fetchone()[0]
            seen["results"] = other.execute("SELECT count(*) FROM investigations_queryresult").fetchone()[0]
        return real_read(**kwargs)

    query = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs", enqueue=False)
    monkeypatch.setattr(gateway, "read_rows", read_rows)
    assert actions.query_run(query_id=query.pk).status == QueryStatus.SUCCEEDED
    assert seen == {"requested": 1, "status": QueryStatus.QUEUED, "results": 0}
    assert events(Action.QUERY_COMPLETED, query).count() == 1


# --- plans that do not depend on where the case sits ------------------------------------


def _case_rows_read() -> int:
    """Rows of the case table this transaction has read so far, by any scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0)"
            "  FROM pg_stat_xact_user_tables WHERE relid = %s::regclass",
            [Case._meta.db_table],
        )
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.slow
def test_a_query_on_the_newest_case_reads_one_case_row_however_many_cases_there_are(lead, member):
    # Grants crowd on an old case, then many cases follow, and the statistics see that much;
    # the newest case then gets its first grant. Each statement of the attempt and the run
    # joined the case by planner's choice: a merge join walked the case table's primary key
    # from the oldest case (the statistics put every grant's case near the start) up to this
    # one, reading every case (40 ms a call at 110,000 cases, and it grows with the table).
    # Each now reads the grant's one case by its key, whatever the statistics say.
    [old] = bulk.cases(1, lead=lead, prefix="OLD")
    later = timezone.now() + timedelta(hours=2)
    bulk.grants(500, case=old, grantee=member, expires_at=later)
    bulk.cases(20_000, lead=lead, prefix="MANY")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE investigations_case, investigations_grant, investigations_grant_grantees")
    [newest] = bulk.cases(1, lead=lead, prefix="NEW")
    [grant] = bulk.grants(1, case=newest, grantee=lead, expires_at=later)

    before = _case_rows_read()
    query = query_actions.query_execute_now(actor=lead, grant=grant, category="profile", subjects=[1])
    assert query.status == QueryStatus.SUCCEEDED, (query.status, query.denial_reason, query.error)
    assert _case_rows_read() - before <= 10
