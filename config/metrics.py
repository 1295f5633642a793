"""Prometheus metrics: django-prometheus's HTTP, database and cache metrics, plus Custos's own.

Custos's gauges are read from the database at scrape time (a handful of indexed aggregate
queries), so every web process answers the same whatever served the requests, and nothing
is lost when a process restarts. They are aggregates only: counts, ages and sequence
numbers, never a case reference, a subject or a person.

The endpoint (``/metrics``) answers 404 unless it is configured: a bearer token
(``METRICS_TOKEN``) and/or a list of client networks (``METRICS_ALLOWED_NETWORKS``). With
both set, both must match.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Max, Min
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from audit.context import client_ip
from audit.events import Action
from audit.models import AuditEvent, StreamDestination
from audit.streams import state as stream_state
from investigations.models import Alert, DataPullRequest, DataQuery, Grant
from investigations.models.grant import GrantStatus
from investigations.models.query import QueryStatus
from investigations.models.request import RequestStatus
from operations.models import TaskHealth

# Ages of requests awaiting a decision, as upper bounds of buckets (the last is open).
PENDING_AGE_BUCKETS = (
    ("1h", timedelta(hours=1)),
    ("1d", timedelta(days=1)),
    ("7d", timedelta(days=7)),
    ("30d", timedelta(days=30)),
)


def _gauge(name: str, documentation: str, labels: tuple[str, ...] = ()) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"custos_{name}", documentation, labels=list(labels) or None)


def _pending_requests(now) -> GaugeMetricFamily:
    metric = _gauge("requests_pending", "Data-pull requests awaiting a decision, by age since submission.", ("age",))
    pending = DataPullRequest.objects.filter(status=RequestStatus.SUBMITTED)
    lower = None
    for label, bound in PENDING_AGE_BUCKETS:
        bucket = pending.filter(submitted_at__gt=now - bound)
        if lower is not None:
            bucket = bucket.filter(submitted_at__lte=now - lower)
        metric.add_metric([f"<{label}"], bucket.count())
        lower = bound
    metric.add_metric([f">={PENDING_AGE_BUCKETS[-1][0]}"], pending.filter(submitted_at__lte=now - lower).count())
    return metric


def _grants_and_queries() -> Iterator[GaugeMetricFamily]:
    grants = _gauge("grants_active", "Grants in force (active, not yet past expires_at).")
    grants.add_metric([], Grant.objects.usable().count())
    yield grants
    by_state = dict(DataQuery.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    queries = _gauge("queries", "Queries by state.", ("state",))
    for status in QueryStatus.values:
        queries.add_metric([status], by_state.get(status, 0))
    yield queries
    denials = _gauge("query_denials", "Denied query attempts, by reason.", ("reason",))
    reasons = DataQuery.objects.filter(status=QueryStatus.DENIED).values_list("denial_reason")
    for reason, count in reasons.annotate(n=Count("pk")).values_list("denial_reason", "n"):
        denials.add_metric([reason or "unknown"], count)
    yield denials
    issued = _gauge("grants", "Grants by status.", ("status",))
    counts = dict(Grant.objects.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))
    for status in GrantStatus.values:
        issued.add_metric([status], counts.get(status, 0))
    yield issued


def _alerts(now) -> Iterator[GaugeMetricFamily]:
    open_alerts = Alert.objects.open()
    counts = open_alerts.values_list("severity").annotate(n=Count("pk")).values_list("severity", "n")
    metric = _gauge("alerts_open", "Unacknowledged oversight alerts, by severity.", ("severity",))
    found = dict(counts)
    for severity in ("info", "warning", "critical"):
        metric.add_metric([severity], found.get(severity, 0))
    yield metric
    oldest = open_alerts.aggregate(oldest=Min("created_at"))["oldest"]
    age = _gauge("alert_oldest_open_age_seconds", "Age of the oldest unacknowledged alert (0: none open).")
    age.add_metric([], (now - oldest).total_seconds() if oldest else 0)
    yield age


def _ledger(now) -> Iterator[GaugeMetricFamily]:
    head = AuditEvent.objects.aggregate(head=Max("seq"))["head"] or 0
    metric = _gauge("ledger_head_seq", "Sequence number of the newest audit event.")
    metric.add_metric([], head)
    yield metric
    verified = (
        AuditEvent.objects.filter(action=Action.AUDIT_VERIFIED).order_by("-seq").values_list("occurred_at", flat=True)
    ).first()
    age = _gauge("audit_last_verified_age_seconds", "Seconds since the ledger last verified successfully (-1: never).")
    age.add_metric([], (now - verified).total_seconds() if verified else -1)
    yield age
    lag = _gauge("stream_lag_events", "Events recorded after a stream destination's cursor.", ("destination",))
    failing = _gauge("stream_failing", "1 while a stream destination is failing or stalled.", ("destination",))
    for destination in StreamDestination.objects.all():
        lag.add_metric([destination.name], max(head - destination.cursor, 0))
        failing.add_metric([destination.name], int(stream_state(destination, now, head) in {"failing", "stalled"}))
    yield lag
    yield failing


def _tasks() -> GaugeMetricFamily:
    metric = _gauge(
        "task_last_success_timestamp_seconds", "When each Celery task last succeeded (Unix time).", ("task",)
    )
    for task, moment in TaskHealth.objects.exclude(last_succeeded_at=None).values_list("task", "last_succeeded_at"):
        metric.add_metric([task], moment.timestamp())  # type: ignore[union-attr]  # None excluded above
    return metric


class CustosCollector(Collector):
    """Custos's own gauges, computed from the database at each scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = timezone.now()
        yield _pending_requests(now)
        yield from _grants_and_queries()
        yield from _alerts(now)
        yield from _ledger(now)
        yield _tasks()


def _registry() -> CollectorRegistry:
    """The process's registry, or the multiprocess one when gunicorn's workers share a directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


def _allowed(request: HttpRequest) -> bool:
    token, networks = settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS
    if not token and not networks:
        return False
    if token:
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return False
    if networks:
        try:
            # The client as the ledger sees it: behind a proxy, not the proxy's own address.
            address = ipaddress.ip_address(client_ip(request))
        except ValueError:
            return False
        if not any(address in ipaddress.ip_network(network, strict=False) for network in networks):
            return False
    return True


@login_not_required
@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    """``/metrics`` for Prometheus: 404 to anyone without the token or outside the allowed networks."""
    if not _allowed(request):
        raise Http404
    registry = CollectorRegistry()
    registry.register(CustosCollector())
    body = generate_latest(_registry()) + generate_latest(registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
