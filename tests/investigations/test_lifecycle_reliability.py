"""Grant lifecycle against real PostgreSQL, Redis and worker processes: beat, crashes, a lost Redis, two beats.

Each test starts and stops its own worker processes (and, for the Redis test, its own
private ``redis-server``). Beat runs inside the worker (``--beat``) with the database
scheduler; ``CUSTOS_TEST_BEAT`` shrinks the schedule to the entries a test needs, every
few seconds (config/settings_test.py).
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import timedelta
from email import message_from_string
from pathlib import Path

import pytest
from django.db.models import F
from django.utils import timezone

from audit.events import Action
from audit.models import AuditEvent
from audit.verification import verify
from custos_testing import bulk
from custos_testing.worker import CeleryWorker, RedisServer, broker, wait_for
from investigations import actions, gateway
from investigations.actions.lifecycle import grants_expire_due
from investigations.errors import QueryDenied
from investigations.models import DataQuery, DenialReason, Grant, GrantStatus, QueryResult, QueryStatus
from investigations.models.grant import db_now
from investigations.tasks import expire_grants
from operations.models import TaskHealth

from .fixtures import file_request

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.worker,
    pytest.mark.timeout(150),
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]

INTERVAL = 2  # seconds between two sends of a shortened beat entry
LATENCY = 4  # seconds allowed for beat's tick, the broker and the worker on a busy machine




def all_expired(grant_ids) -> bool:
    return not Grant.objects.filter(pk__in=grant_ids, status=GrantStatus.ACTIVE).exists()


def status_of(grant: Grant) -> str:
    return Grant.objects.values_list("status", flat=True).get(pk=grant.pk)


def expiry_events(grant_ids) -> Counter:
    targets = AuditEvent.objects.filter(action=Action.GRANT_EXPIRED, target_id__in=[str(pk) for pk in grant_ids])
    return Counter(targets.values_list("target_id", flat=True))


def successes(task: str):
    return TaskHealth.objects.filter(task=task).values_list("last_succeeded_at", flat=True).first()


def wait_for_runs(task: str, count: int, *workers: CeleryWorker) -> None:
    """Wait until ``task`` has succeeded ``count`` more times (seen through the worker health rows)."""
    for _ in range(count):
        before = successes(task)
        wait_for(lambda before=before: (successes(task) or before) != before, f"another run of {task}", *workers)


def beat_worker(tmp_path: Path, name: str, schedule: str, **env: str) -> CeleryWorker:
    env = {"CUSTOS_TEST_BEAT": schedule, **env}
    return CeleryWorker(log_path=tmp_path / f"{name}.log", beat=True, name=name, env=env)


# --- a. beat + worker expire a grant on time, once ------------------------------------------------


def test_beat_and_worker_expire_a_grant_within_the_schedule_interval(wide_grant, lead, tmp_path):
    worker = beat_worker(tmp_path, "beat", f"expire-grants={INTERVAL}")
    worker.start()
    try:
        Grant.objects.filter(pk=wide_grant.pk).update(expires_at=db_now() + timedelta(seconds=2))
        wide_grant.refresh_from_db()
        wait_for(lambda: status_of(wide_grant) == GrantStatus.EXPIRED, "the expiry of the grant", worker)
        wait_for_runs("investigations.expire_grants", 2, worker)  # beat keeps sending: later runs add nothing
    finally:
        worker.stop()
    wide_grant.refresh_from_db()
    lateness = wide_grant.expired_at - wide_grant.expires_at
    assert timedelta(0) <= lateness <= timedelta(seconds=INTERVAL + LATENCY), lateness
    assert expiry_events([wide_grant.pk]) == {str(wide_grant.pk): 1}
    assert grants_expire_due() == 0  # running expire_grants again adds nothing
    assert expiry_events([wide_grant.pk]) == {str(wide_grant.pk): 1}
    assert "Sending due task expire-grants" in worker.log()


# --- b. kill -9 during expire_grants ----------------------------------------------------------------


def test_worker_killed_during_expiry_then_restarted_expires_every_grant_exactly_once(open_case, lead, tmp_path):
    due = {grant.pk for grant in bulk.grants(3000, case=open_case, grantee=lead, expires_at=timezone.now())}
    doomed = CeleryWorker(log_path=tmp_path / "doomed.log", name="doomed", env={"CUSTOS_EXPIRY_BATCH": "5"})
    doomed.start()
    try:
        expire_grants.delay()
        wait_for(lambda: Grant.objects.filter(status=GrantStatus.EXPIRED).count() >= 100, "expiry under way", doomed)
        doomed.kill_hard()
    finally:
        doomed.stop()
    expired = set(Grant.objects.filter(status=GrantStatus.EXPIRED).values_list("pk", flat=True))
    assert 100 <= len(expired) < len(due), "the worker must die in the middle of the run"
    # Each batch is one transaction: the killed one left nothing behind, the committed ones
    # left their grants expired and their events written, one each.
    assert expiry_events(due) == Counter({str(pk): 1 for pk in expired})

    fresh = beat_worker(tmp_path, "fresh", f"expire-grants={INTERVAL}", CUSTOS_EXPIRY_BATCH="500")
    fresh.start()
    try:
        wait_for(lambda: all_expired(due), "the rest", fresh)
        wait_for_runs("investigations.expire_grants", 1, fresh)
    finally:
        fresh.stop()
    assert expiry_events(due) == Counter({str(pk): 1 for pk in due})
    assert grants_expire_due() == 0
    result = verify()
    assert result.ok, result.summary()


# --- c. Redis stops and comes back empty ----------------------------------------------------------------


@pytest.fixture
def private_redis(tmp_path):
    if not shutil.which("redis-server"):
        if "redis" in os.environ.get("CUSTOS_REQUIRE", "").split(","):
            pytest.fail("redis-server is not installed, and CUSTOS_REQUIRE includes redis")
        pytest.skip("needs redis-server to run a private Redis that the test may stop")
    server = RedisServer(log_path=tmp_path / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def short_grant(case, lead, reviewer) -> Grant:
    request = file_request(case, lead, subjects=("1",), categories=("ip_logs",))
    actions.request_submit(actor=lead, request=request)
    actions.request_decide(actor=reviewer, request=request, outcome="approve")
    request.refresh_from_db()
    return request.grant


def completions(query: DataQuery) -> int:
    return AuditEvent.objects.filter(action=Action.QUERY_COMPLETED, target_id=str(query.pk)).count()


def test_redis_lost_without_persistence_loses_no_query_and_no_expiry(
    private_redis, open_case, lead, second_reviewer, wide_grant, tmp_path
):
    ending = short_grant(open_case, lead, second_reviewer)
    with broker(private_redis.url):
        lost = actions.query_submit(actor=lead, grant=wide_grant, category="ip_logs")
        assert not lost.enqueue_failed  # its message sits in Redis, and no worker runs yet
        private_redis.stop()  # Redis dies without persistence: the message is gone

        down = actions.query_submit(actor=lead, grant=wide_grant, category="location")
        assert down.enqueue_failed and down.status == QueryStatus.QUEUED  # recorded, doorbell failed fast
        Grant.objects.filter(pk=ending.pk).update(expires_at=db_now() + timedelta(seconds=2))
        waiting = actions.query_submit(actor=lead, grant=ending, category="ip_logs")  # valid now, runs too late
        wait_for(lambda: db_now() >= Grant.objects.get(pk=ending.pk).expires_at, "the grant's end")

        # Past expires_at, nothing has expired the grant (no beat, no broker), yet it is refused.
        ending.refresh_from_db()
        assert ending.status == GrantStatus.ACTIVE
        assert gateway.refusal(grant=ending, user=lead, parameters=waiting_parameters(waiting), at=db_now()) == (
            DenialReason.GRANT_EXPIRED
        )
        assert not Grant.objects.usable_by(lead).filter(pk=ending.pk).exists()
        with pytest.raises(QueryDenied):
            actions.query_submit(actor=lead, grant=ending, category="ip_logs")

        private_redis.start()  # back, empty
        # Stands for the sweeper's threshold passing: the queries have waited long enough.
        queued = DataQuery.objects.filter(status=QueryStatus.QUEUED)
        queued.update(requested_at=F("requested_at") - timedelta(minutes=5))
        worker = beat_worker(tmp_path, "after", f"requeue-stale-queries={INTERVAL},expire-grants={INTERVAL}")
        worker.start()
        try:
            done = {QueryStatus.SUCCEEDED, QueryStatus.DENIED, QueryStatus.FAILED}
            for query in (lost, down, waiting):
                wait_for(lambda query=query: query_status(query) in done, f"query {query.pk}", worker)
            wait_for(lambda: status_of(ending) == GrantStatus.EXPIRED, "the expiry", worker)
            wait_for_runs("investigations.requeue_stale_queries", 2, worker)  # later sweeps add nothing
        finally:
            worker.stop()

    for query in (lost, down):
        query.refresh_from_db()
        # The sweeper re-sent each once (noted as a retry), and each completed once.
        assert (query.status, query.attempts, completions(query)) == (QueryStatus.SUCCEEDED, 2, 1), query.error
        assert QueryResult.objects.filter(query=query).count() == 1
    waiting.refresh_from_db()
    assert (waiting.status, waiting.denial_reason) == (QueryStatus.DENIED, DenialReason.GRANT_EXPIRED)
    assert not AuditEvent.objects.filter(action=Action.QUERY_COMPLETED, target_id=str(waiting.pk)).exists()
    assert not QueryResult.objects.filter(query=waiting).exists()
    assert expiry_events([ending.pk]) == {str(ending.pk): 1}


def query_status(query: DataQuery) -> str:
    return DataQuery.objects.values_list("status", flat=True).get(pk=query.pk)


def waiting_parameters(query: DataQuery) -> gateway.QueryParameters:
    from investigations.actions.query import _parameters_of

    return _parameters_of(query)


# --- d. two beats at once ---------------------------------------------------------------------------------


def sent_warnings(folder: Path) -> Counter:
    """(grant id, threshold) of every warning email the workers wrote to ``folder``."""
    found = Counter()
    for path in folder.glob("*.log") if folder.exists() else []:
        for chunk in path.read_text().split("-" * 79):
            if "Subject:" not in chunk:
                continue
            body = message_from_string(chunk.strip()).get_payload()
            words = body.split()
            found[(int(words[words.index("grant") + 1]), body.split("(within ")[1].split(")")[0])] += 1
    return found


def test_two_beats_at_once_send_no_duplicate_events_or_emails(open_case, lead, tmp_path):
    mail = tmp_path / "mail"
    schedule = "expire-grants=1,warn-expiring-grants=1"
    first = beat_worker(tmp_path, "beat-a", schedule, CUSTOS_TEST_EMAIL_DIR=str(mail), CUSTOS_EXPIRY_BATCH="3")
    second = beat_worker(tmp_path, "beat-b", schedule, CUSTOS_TEST_EMAIL_DIR=str(mail), CUSTOS_EXPIRY_BATCH="3")
    first.start()
    second.start()
    try:
        now = timezone.now()

        def ending_in(delta: timedelta) -> list[int]:
            return [grant.pk for grant in bulk.grants(10, case=open_case, grantee=lead, expires_at=now + delta)]

        due = ending_in(timedelta(seconds=1)) + ending_in(timedelta(seconds=3)) + ending_in(timedelta(seconds=5))
        day, hour = ending_in(timedelta(hours=20)), ending_in(timedelta(minutes=30))
        wait_for(lambda: all_expired(due), "expiry", first, second)
        wanted = {(pk, "24 hours") for pk in day + hour} | {(pk, "1 hour") for pk in hour}
        wait_for(lambda: wanted <= set(sent_warnings(mail)), "the warnings", first, second)
        wait_for_runs("investigations.warn_expiring_grants", 3, first, second)  # both beats keep sending for a while
        wait_for_runs("investigations.expire_grants", 3, first, second)
    finally:
        first.stop()
        second.stop()
    for worker in (first, second):  # two beats really ran
        assert "Sending due task expire-grants" in worker.log()
        assert "Sending due task warn-expiring-grants" in worker.log()
    assert expiry_events(due) == Counter({str(pk): 1 for pk in due})
    # Exactly one email per grant and threshold: one for each warned_*_at the claim set (grants
    # that ended within seconds may have been warned too before they expired, once each).
    expected = Counter()
    for field, label in (("warned_24h_at", "24 hours"), ("warned_1h_at", "1 hour")):
        flagged = Grant.objects.filter(pk__in=due + day + hour, **{f"{field}__isnull": False})
        expected.update((pk, label) for pk in flagged.values_list("pk", flat=True))
    assert sent_warnings(mail) == expected
    assert wanted <= set(expected)
    assert not Grant.objects.filter(pk__in=day, warned_1h_at__isnull=False).exists()
    result = verify()
    assert result.ok, result.summary()
