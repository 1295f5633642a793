"""Worker health: signal handlers record each task's runs; the command and the staff page report overdue tasks."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from custos_testing.worker import wait_for
from investigations import tasks
from operations.health import schedule_health
from operations.models import TaskHealth
from tests.worker_tasks import create_group, fail

pytestmark = pytest.mark.django_db

SCHEDULED = {
    "investigations.expire_grants": timedelta(minutes=1),
    "investigations.requeue_stale_queries": timedelta(minutes=1),
    "investigations.scan_oversight": timedelta(minutes=1),
    "investigations.deliver_mail": timedelta(minutes=1),
    "investigations.expire_pending_requests": timedelta(hours=1),
    "investigations.warn_expiring_grants": timedelta(hours=1),
    "audit.tasks.seal_audit_checkpoint": timedelta(hours=1),
    "investigations.purge_expired_results": timedelta(days=1),
    "audit.tasks.verify_audit_chain": timedelta(days=1),
    "audit.tasks.verify_audit_chain_complete": timedelta(days=7),
    "investigations.verify_evidence": timedelta(days=1),
    "investigations.purge_closed_evidence": timedelta(days=1),
    "audit.tasks.dispatch_streams": timedelta(seconds=10),
}
if connection.vendor == "postgresql":  # SQLite chains at append time: no sealer to schedule
    SCHEDULED["audit.tasks.seal_audit_events"] = timedelta(seconds=10)
    SCHEDULED["audit.tasks.create_audit_partitions"] = timedelta(days=1)


def all_succeeded(ago: timedelta = timedelta(seconds=10)) -> None:
    for task in SCHEDULED:
        TaskHealth.objects.create(task=task, last_succeeded_at=timezone.now() - ago)


def run_command() -> tuple[str, CommandError | None]:
    from io import StringIO

    out = StringIO()
    try:
        call_command("worker_health", stdout=out)
    except CommandError as error:
        return out.getvalue(), error
    return out.getvalue(), None


def line_for(output: str, task: str) -> str:
    [line] = [line for line in output.splitlines() if f" {task} " in line]
    return line


# --- the signal handlers ---------------------------------------------------------------------


def test_a_successful_run_records_start_success_and_runtime():
    before = timezone.now()
    tasks.expire_grants.apply()
    health = TaskHealth.objects.get(task="investigations.expire_grants")
    assert before <= health.last_started_at <= health.last_succeeded_at <= timezone.now()
    assert health.last_runtime is not None and 0 <= health.last_runtime < 60
    assert health.last_failed_at is None


def test_a_failed_run_records_the_failure_and_keeps_the_last_success():
    create_group.apply(args=["ops-smoke"])
    fail.apply(args=["disk full"])
    health = TaskHealth.objects.get(task="tests.fail")
    assert health.last_failed_at is not None and health.last_succeeded_at is None
    assert health.last_error == "ValueError: disk full"
    fail.apply(args=["again"])
    assert TaskHealth.objects.filter(task="tests.fail").count() == 1  # one row per task, updated in place
    assert TaskHealth.objects.get(task="tests.fail").last_error == "ValueError: again"
    assert TaskHealth.objects.get(task="tests.create_group").last_succeeded_at is not None


@pytest.mark.worker
@pytest.mark.timeout(120)
def test_a_real_worker_records_health_on_the_configured_broker(celery_worker_process):
    create_group.delay("ops-from-worker")
    health = wait_for(
        lambda: TaskHealth.objects.filter(task="tests.create_group", last_succeeded_at__isnull=False).first(),
        "a health row from the worker",
        celery_worker_process,
        seconds=60,
    )
    assert health.last_started_at <= health.last_succeeded_at and health.last_runtime is not None


# --- which tasks are overdue ------------------------------------------------------------------


def test_every_periodic_task_is_listed_with_its_interval():
    rows = {row.task: row for row in schedule_health()}
    assert {task: row.every for task, row in rows.items()} == SCHEDULED


def test_intervals_and_pauses_come_from_the_database_when_beat_has_stored_them():
    every_ten = IntervalSchedule.objects.create(every=10, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name="expire-grants", task="investigations.expire_grants", interval=every_ten)
    PeriodicTask.objects.create(
        name="warn-expiring-grants", task="investigations.warn_expiring_grants", interval=every_ten, enabled=False
    )
    all_succeeded(ago=timedelta(minutes=15))
    rows = {row.name: row for row in schedule_health()}
    assert rows["expire-grants"].in_database and rows["expire-grants"].every == timedelta(minutes=10)
    assert rows["expire-grants"].state == "ok"  # 15 min < 2 x 10 min
    # A task Custos needs, disabled: failing, not merely paused.
    assert rows["warn-expiring-grants"].state == "disabled" and rows["warn-expiring-grants"].overdue
    assert rows["requeue-stale-queries"].overdue  # 15 min > 2 x 1 min, from the settings schedule


def test_command_exits_zero_when_everything_ran_recently():
    all_succeeded()
    output, error = run_command()
    assert error is None, error
    for task in SCHEDULED:
        assert line_for(output, task).endswith(" ok")
    assert "OVERDUE" not in output


def test_command_flags_a_task_older_than_twice_its_interval_and_exits_one():
    all_succeeded(ago=timedelta(minutes=90))  # older than 2 x 1 min, younger than 2 x 1 h
    output, error = run_command()
    assert error is not None and error.returncode == 1
    # the four every-minute tasks, the stream dispatch and, on PostgreSQL, the sealer
    overdue = 6 if connection.vendor == "postgresql" else 5
    assert f"{overdue} periodic task(s) overdue or disabled" in str(error)
    assert line_for(output, "investigations.expire_grants").endswith("OVERDUE")
    assert line_for(output, "investigations.requeue_stale_queries").endswith("OVERDUE")
    assert line_for(output, "investigations.scan_oversight").endswith("OVERDUE")
    assert line_for(output, "investigations.deliver_mail").endswith("OVERDUE")
    assert line_for(output, "investigations.warn_expiring_grants").endswith(" ok")
    assert line_for(output, "audit.tasks.verify_audit_chain").endswith(" ok")


def installed(ago: timedelta) -> None:
    """As if Custos had been installed ``ago`` (its operations tables created then)."""
    MigrationRecorder(connection).migration_qs.filter(app="operations").update(applied=timezone.now() - ago)


def test_a_task_that_never_succeeded_is_overdue_and_a_failing_one_says_so():
    installed(timedelta(days=3))
    all_succeeded()
    TaskHealth.objects.filter(task="audit.tasks.verify_audit_chain").delete()
    TaskHealth.objects.filter(task="investigations.expire_grants").update(
        last_failed_at=timezone.now(), last_error="OperationalError: down"
    )
    output, error = run_command()
    assert error is not None and "verify-audit-chain" in str(error) and "expire-grants" not in str(error)
    assert "never" in line_for(output, "audit.tasks.verify_audit_chain")
    assert line_for(output, "investigations.expire_grants").endswith("ok (last run failed)")


def test_a_fresh_install_waits_for_the_first_run_of_its_daily_tasks():
    installed(timedelta(hours=3))
    daily = {task for task, every in SCHEDULED.items() if every == timedelta(days=1)}
    for task in SCHEDULED.keys() - daily:
        TaskHealth.objects.create(task=task, last_succeeded_at=timezone.now())
    output, error = run_command()
    assert error is None, error
    for task in daily:
        assert line_for(output, task).endswith("not run yet")
    rows = {row.task: row for row in schedule_health()}
    assert all(rows[task].waiting and not rows[task].overdue for task in daily)


def test_a_worker_that_never_started_is_reported_minutes_after_install():
    installed(timedelta(minutes=5))
    output, error = run_command()
    assert error is not None and error.returncode == 1
    assert line_for(output, "investigations.expire_grants").endswith("OVERDUE")  # 5 min > 2 x 1 min
    assert line_for(output, "audit.tasks.verify_audit_chain").endswith("not run yet")  # 5 min < 2 days


def test_a_schedule_beat_never_sent_gets_its_grace_from_when_it_was_made():
    installed(timedelta(days=30))
    daily = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.DAYS)
    PeriodicTask.objects.create(name="verify-audit-chain", task="audit.tasks.verify_audit_chain", interval=daily)
    rows = {row.name: row for row in schedule_health()}
    assert rows["verify-audit-chain"].state == "not run yet"  # made just now; beat has not sent it
    PeriodicTask.objects.filter(name="verify-audit-chain").update(date_changed=timezone.now() - timedelta(days=3))
    rows = {row.name: row for row in schedule_health()}
    assert rows["verify-audit-chain"].state == "never succeeded" and rows["verify-audit-chain"].overdue
    PeriodicTask.objects.filter(name="verify-audit-chain").update(
        date_changed=timezone.now(), last_run_at=timezone.now()  # beat sent it: the grace runs from install
    )
    assert {row.name: row for row in schedule_health()}["verify-audit-chain"].overdue


def test_a_task_that_ran_and_failed_but_never_succeeded_is_overdue_at_once():
    installed(timedelta(minutes=1))
    TaskHealth.objects.create(
        task="audit.tasks.verify_audit_chain", last_failed_at=timezone.now(), last_error="boom"
    )
    rows = {row.task: row for row in schedule_health()}
    assert rows["audit.tasks.verify_audit_chain"].state == "never succeeded"
    assert rows["audit.tasks.verify_audit_chain"].overdue and rows["audit.tasks.verify_audit_chain"].failing


# --- the staff page ----------------------------------------------------------------------------


URL = "/operations/schedules/"


def test_page_url_name():
    assert reverse("operations:schedules") == URL


def test_staff_see_the_table_with_overdue_tasks_highlighted(login, admin_user):
    all_succeeded(ago=timedelta(minutes=90))
    response = login(admin_user).get(URL)
    assert response.status_code == 200
    rows = {row.task: row for row in response.context["rows"]}
    assert rows["investigations.expire_grants"].overdue and not rows["audit.tasks.verify_audit_chain"].overdue
    page = response.content.decode()
    assert '<tr class="overdue">' in page and "OVERDUE" in page
    # the four every-minute tasks, the stream dispatch and, on PostgreSQL, the sealer
    assert page.count('<tr class="overdue">') == (6 if connection.vendor == "postgresql" else 5)
    assert 'href="/operations/schedules/"' in page  # in the navigation


def test_page_without_overdue_tasks_says_so(login, superuser):
    all_succeeded()
    page = login(superuser).get(URL).content.decode()
    assert "OVERDUE" not in page and '<tr class="overdue">' not in page


@pytest.mark.parametrize("persona", ["lead", "reviewer", "auditor", "outsider"])
def test_non_staff_get_404_and_no_link(request, login, persona):
    user = request.getfixturevalue(persona)
    client = login(user)
    assert client.get(URL).status_code == 404
    assert "/operations/schedules/" not in client.get(reverse("home")).content.decode()


def test_anonymous_visitors_are_sent_to_login(client):
    response = client.get(URL)
    assert response.status_code == 302 and reverse("account_login") in response["Location"]


def test_a_disabled_task_custos_needs_fails_the_command_and_the_page(login, admin_user):
    """Pausing expire-grants in the admin must not look like a quiet, healthy schedule."""
    all_succeeded()
    every_minute = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="expire-grants", task="investigations.expire_grants", interval=every_minute, enabled=False
    )
    PeriodicTask.objects.create(
        name="tidy-up", task="tests.worker_tasks.create_group", interval=every_minute, enabled=False
    )
    rows = {row.name: row for row in schedule_health()}
    assert rows["expire-grants"].state == "disabled" and rows["expire-grants"].overdue
    assert rows["tidy-up"].state == "paused" and not rows["tidy-up"].overdue  # not one of Custos's own
    output, error = run_command()
    assert error is not None and error.returncode == 1
    assert "1 periodic task(s) overdue or disabled: expire-grants" in str(error)
    assert line_for(output, "investigations.expire_grants").endswith("DISABLED (Custos needs it)")
    page = login(admin_user).get(URL).content.decode()
    assert page.count('<tr class="overdue">') == 1 and "DISABLED</span> Custos needs this task" in page
