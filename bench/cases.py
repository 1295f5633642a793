"""The benchmark cases. Each returns a framework.Result."""

from __future__ import annotations

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from investigations.access import cases_visible_to
from investigations.actions.lifecycle import grants_expire_due
from investigations.models import Grant, GrantStatus

from . import fixtures
from .framework import Result, interleaved, ratio_result

CASES: dict = {}


def case(function):
    CASES[function.__name__] = function
    return function


class Rollback(Exception):
    pass


def in_rollback(function) -> float:
    """Run ``function`` inside a transaction that is rolled back, returning its duration."""
    import time

    start = time.perf_counter()
    try:
        with transaction.atomic():
            function()
            elapsed = time.perf_counter() - start
            raise Rollback
    except Rollback:
        pass
    return elapsed


@case
def expiry_sweep() -> Result:
    """expire_grants over 10,000 due grants vs a per-row save() loop over the same grants."""
    lead = fixtures.user("bench-expiry-lead")
    [parent] = fixtures.cases(1, lead, "EXP")
    count = 10_000
    grants = fixtures.due_grants(count, parent, lead)
    ids = [grant.pk for grant in grants]

    def sweep() -> None:
        grants_expire_due()

    def save_loop() -> None:
        from django.utils import timezone

        for grant in Grant.objects.filter(pk__in=ids):
            grant.status = GrantStatus.EXPIRED
            grant.expired_at = timezone.now()
            grant.save(update_fields=["status", "expired_at"])

    subject_times, baseline_times = [], []
    for _ in range(3):
        subject_times.append(in_rollback(sweep))
        baseline_times.append(in_rollback(save_loop))
    with CaptureQueriesContext(connection) as small, transaction.atomic():
        grants_expire_due()
        transaction.set_rollback(True)
    # Speed-up: the per-row loop's time over the sweep's, round by round.
    result = ratio_result(
        "expiry_sweep",
        baseline_times,
        subject_times,
        target="≥ 100× faster",
        check=lambda ratio: ratio >= 100,
        note=f"{len(small.captured_queries)} statements for {count} grants",
    )
    result.unit = "speed-up"
    return result


@case
def visible_cases() -> Result:
    """cases_visible_to at 100,000 cases vs at 10,000 (the user sees 1 % of them)."""
    small_user, large_user = fixtures.user("bench-vis-small"), fixtures.user("bench-vis-large")
    lead = fixtures.user("bench-vis-lead")
    from django.contrib.auth.models import Group

    group = Group.objects.get(name="investigator")
    for viewer in (small_user, large_user):
        viewer.groups.add(group)
    small_cases = fixtures.cases(10_000, lead, "VS")
    fixtures.view_perms(small_user, small_cases[::100])
    large_cases = fixtures.cases(100_000, lead, "VL")
    fixtures.view_perms(large_user, large_cases[::100])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE") if connection.vendor == "postgresql" else None

    def listing(viewer, expected):
        def run():
            rows = list(cases_visible_to(viewer).order_by("-created_at", "-id")[:50].values_list("pk", flat=True))
            assert len(rows) == 50 and expected

        return run

    large_times, small_times = interleaved(listing(large_user, 1000), listing(small_user, 100), rounds=21)
    return ratio_result(
        "visible_cases",
        large_times,
        small_times,
        target="≤ 1.2×",
        check=lambda ratio: ratio <= 1.2,
        note="first page of 50, ordered as the list view orders",
    )
