"""Template filters for showing ledger content as people (and other tools) read it."""

from __future__ import annotations

import json

from django import template

register = template.Library()


@register.filter
def pretty_json(value) -> str:
    """Indented JSON with sorted keys: event and alert details as they are stored, not Python's repr."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
