"""Bounded counts for list pages (the case, grant, review and alert lists and the audit trail).

A page's count costs at most ``COUNT_LIMIT + 1`` rows read, whatever the rows behind it: past
the limit it shows ``1000+``. With keyset paging, that makes a page's cost independent of how
many rows the reader may list.
"""

from __future__ import annotations

from django.db.models import QuerySet

COUNT_LIMIT = 1000


class Tally(int):
    """A count that stopped at a limit: prints as ``1000+`` when there were more (an int, so
    ``pluralize`` and comparisons work)."""

    capped: bool = False

    def __new__(cls, value: int, capped: bool = False) -> Tally:
        tally = super().__new__(cls, value)
        tally.capped = capped
        return tally

    def __str__(self) -> str:
        return f"{int(self)}+" if self.capped else super().__str__()


def count_up_to(queryset: QuerySet, limit: int | None = None) -> Tally:
    """``queryset.count()``, reading at most ``limit + 1`` rows (``COUNT_LIMIT``): one bounded statement."""
    limit = COUNT_LIMIT if limit is None else limit
    found = queryset.order_by()[: limit + 1].count()
    return Tally(min(found, limit), capped=found > limit)
