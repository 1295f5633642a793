"""The audit ledger. ``audit.record(...)`` is the only writer."""


def record(**kwargs):
    from .ledger import record as _record

    return _record(**kwargs)
