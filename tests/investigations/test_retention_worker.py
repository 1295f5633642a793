"""The retention purge on real services: the beat's task, run by a real worker process, purges a
closed case past retention (one event per item, files gone, records kept) and leaves a held one."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.storage import storages
from django.utils import timezone

from audit.events import Action
from audit.models import AuditEvent
from investigations import actions
from investigations.models import Case, Evidence
from investigations.tasks import purge_closed_evidence

from .evidence_helpers import PNG, TEXT, upload
from .fixtures import open_case_for
from .test_alerts_worker import wait_for

pytestmark = [
    pytest.mark.django_db(transaction=True, databases=["default", "userdata"]),
    pytest.mark.usefixtures("migrated_rows"),
]


def _closed_long_ago(lead, reviewer, title: str) -> tuple[Case, list[Evidence]]:
    case = open_case_for(lead, reviewer, title=title)
    items = [
        actions.evidence_upload(actor=lead, case=case, upload=upload(TEXT, "notes.txt", "text/plain")),
        actions.evidence_upload(actor=lead, case=case, upload=upload(PNG, "desk.png", "image/png")),
    ]
    actions.case_close(actor=lead, case=case, summary="Done.")
    Case.objects.filter(pk=case.pk).update(closed_at=timezone.now() - timedelta(days=3650))
    return case, items


@pytest.mark.worker
def test_the_worker_purges_past_retention_and_spares_a_case_on_hold(celery_worker_process, lead, reviewer):
    # The worker uses the default evidence storage under the test's var directory, as the app does.
    purged_case, purged_items = _closed_long_ago(lead, reviewer, "Purged after retention")
    held_case, held_items = _closed_long_ago(lead, reviewer, "Kept under legal hold")
    actions.case_legal_hold_set(actor=reviewer, case=held_case, reason="Litigation pending.")
    storage = storages["evidence"]
    assert all(storage.exists(item.stored_name) for item in purged_items + held_items)

    purge_closed_evidence.delay()
    wait_for(
        lambda: Evidence.objects.filter(case=purged_case, purged_at__isnull=False).count() == len(purged_items),
        celery_worker_process,
        "the purge of the closed case's evidence",
    )
    wait_for(
        lambda: not any(storage.exists(item.stored_name) for item in purged_items),
        celery_worker_process,
        "the purged files' deletion",
    )
    events = AuditEvent.objects.filter(action=Action.EVIDENCE_PURGED)
    assert sorted(int(pk) for pk in events.values_list("target_id", flat=True)) == sorted(i.pk for i in purged_items)
    assert set(events.values_list("case_reference", flat=True)) == {purged_case.reference}
    assert all(storage.exists(item.stored_name) for item in held_items)
    assert not Evidence.objects.filter(case=held_case, purged_at__isnull=False).exists()
    assert {item.sha256 for item in Evidence.objects.filter(case=purged_case)} == {i.sha256 for i in purged_items}


@pytest.mark.postgres
def test_a_hold_being_placed_is_never_run_over_by_the_purge(lead, reviewer, evidence_store, settings):
    """Purge and hold serialise on the case row: while a hold's transaction holds the row, the purge
    skips the case (SKIP LOCKED); once the hold commits, the purge finds it and leaves the files."""
    import threading

    from django.db import connections, transaction

    from investigations.actions.locks import locked

    from .evidence_helpers import stored_files

    settings.EVIDENCE = {**settings.EVIDENCE, "RETENTION_DAYS": 30}
    case, items = _closed_long_ago(lead, reviewer, "Held while the purge runs")
    locked_row, release, failures = threading.Event(), threading.Event(), []

    def place_hold() -> None:
        try:
            with transaction.atomic():
                locked(Case.objects).get(pk=case.pk)  # what case_legal_hold_set locks first
                locked_row.set()
                assert release.wait(30)
                actions.case_legal_hold_set(actor=reviewer, case=case, reason="Litigation arrived today.")
        except Exception as error:  # reported below
            failures.append(error)
        finally:
            locked_row.set()
            connections.close_all()

    holder = threading.Thread(target=place_hold)
    holder.start()
    assert locked_row.wait(30)
    assert actions.evidence_purge_due() == 0  # the case row is taken: skipped this run, nothing purged
    release.set()
    holder.join(30)
    assert not failures, failures
    assert Case.objects.get(pk=case.pk).legal_hold
    assert actions.evidence_purge_due() == 0
    assert len(stored_files(evidence_store)) == len(items)
    assert not AuditEvent.objects.filter(action=Action.EVIDENCE_PURGED).exists()
