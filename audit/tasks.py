"""Celery tasks of the ledger. Thin: ids or no arguments, JSON results, safe to run twice."""

from __future__ import annotations

import logging

from celery import current_app, shared_task

from . import checkpoints, partitions, runs, sealer, streams
from .models import StreamDestination

logger = logging.getLogger(__name__)


# Rung after a seal that chained events: the oversight scan reads sealed events only, so what was
# sealed late (behind a long writer) is scanned now rather than at the scan's next beat. By name:
# the ledger does not import the investigations app.
OVERSIGHT_SCAN_TASK = "investigations.scan_oversight"


@shared_task(ignore_result=True)
def seal_audit_events() -> dict:
    """Every ten seconds (PostgreSQL): chain the events committed since the last run (``audit.sealer``),
    then ring the oversight scan if it chained any."""
    outcome = sealer.seal()
    if outcome.sealed:
        current_app.send_task(OVERSIGHT_SCAN_TASK)
    return outcome.as_json()


@shared_task(ignore_result=True)
def create_audit_partitions() -> dict:
    """Daily (PostgreSQL): make the ledger's monthly partitions of this month and the next two
    that are missing (``audit.partitions``); rows never wait for one (the DEFAULT partition)."""
    return {"created": partitions.ensure()}


@shared_task
def seal_audit_checkpoint() -> dict:
    """Hourly: sign the chain head into AUDIT_CHECKPOINT_DIR and record the checkpoint."""
    checkpoint = checkpoints.seal()
    return {"seq": checkpoint.seq, "head": checkpoint.head}


@shared_task
def verify_audit_chain() -> dict:
    """Daily: verify what was added since the last verified signed checkpoint; alert auditors on failure."""
    return runs.verify_and_record(source="schedule", incremental=True).as_json()


@shared_task
def verify_audit_chain_complete() -> dict:
    """Weekly: verify the whole chain from the first event (the daily run trusts the last verified
    signed checkpoint, so this is what finds an edit before it); alert auditors on failure."""
    return runs.verify_and_record(source="schedule").as_json()


@shared_task
def verify_audit_run(run_id: int, source: str = "page") -> dict | None:
    """A verification started by an auditor ("Verify now" on the page, or the API): progress
    on the run's row, outcome on the ledger.

    Safe to deliver twice: the run is claimed with a conditional UPDATE.
    """
    run = runs.run_execute(run_id, source)
    return None if run is None else {"run": run.pk, "ok": run.ok}


@shared_task(ignore_result=True)
def stream_ledger(destination_id: int) -> dict:
    """Send the next batch of the ledger to one destination; chain on while there is more.

    A failure is recorded on the destination (it backs off in the database, and
    ``dispatch_streams`` tries again when it is due), so the task itself never retries.
    """
    try:
        delivery = streams.deliver(destination_id)
    except streams.DeliveryFailed as error:
        logger.warning("ledger stream %s: %s", destination_id, error)
        return {"state": "failed", "error": str(error)}
    if delivery.more:
        stream_ledger.delay(destination_id)
    return delivery.as_json()


@shared_task(ignore_result=True)
def dispatch_streams() -> dict:
    """Every few seconds: apply AUDIT_STREAMS, then start a delivery for every destination that is due."""
    streams.sync_environment()
    due = list(StreamDestination.objects.filter(streams.due()).values_list("pk", flat=True))
    for destination_id in due:
        stream_ledger.delay(destination_id)
    return {"dispatched": due}
