"""Template filters for showing ledger content as people (and other tools) read it."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django import template
from django.apps import apps
from django.urls import reverse

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """Indented JSON with sorted keys: event and alert details as they are stored, not Python's repr."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


# Names people use for the objects events point at ("Query #5", not "investigations.dataquery 5").
TARGET_NAMES = {
    "investigations.case": "Case",
    "investigations.datapullrequest": "Request",
    "investigations.grant": "Grant",
    "investigations.dataquery": "Query",
    "investigations.alert": "Alert",
    "investigations.protectedsubject": "Protected subject",
    "accounts.user": "User",
    "audit.auditevent": "Event",
}


@register.filter
def target_label(event) -> str:
    """``Query #5 on INV-2026-0001``: the event's target in words (empty when it has none)."""
    if not event.target_type:
        return ""
    name = TARGET_NAMES.get(event.target_type)
    if name is None:
        try:
            name = str(apps.get_model(event.target_type)._meta.verbose_name).capitalize()
        except (LookupError, ValueError):
            name = event.target_type
    label = f"{name} #{event.target_id}"
    if event.case_reference and event.target_type != "investigations.case":
        label += f" on {event.case_reference}"
    return label


@register.simple_tag
def target_events_url(event) -> str:
    """The audit trail filtered to every event about the same target."""
    return trail_url(event.target_type, event.target_id)


@register.simple_tag
def trail_url(target_type: str, target_id) -> str:
    """The audit trail filtered to every event about one object (``investigations.grant``, 7):
    where an auditor, who sees no case, request or grant page, follows a reference to one."""
    query = urlencode({"target_type": target_type, "target_id": target_id})
    return f"{reverse('audit:event_list')}?{query}"
