"""Builders shared by the tests and the benchmarks (``bench``), which may import this package
but never ``tests``.

* ``personas``: users made through ``accounts.actions`` (roles, an enrolled second factor);
* ``factories``: factory_boy factories in two families, named for what they do: the
  ``…ActionFactory`` ones go through the actions (every row with its ledger events,
  permissions and notifications), the ``…RowFactory`` ones build rows of the actions' shape
  that ``bulk`` inserts directly (no action, no ledger event), for scale;
* ``bulk``: many rows in a few statements, built by the row factories;
* ``totp``: TOTP codes computed from the RFC, not by the library under test;
* ``worker``: a real Celery worker process (and a Redis server) for integration runs.
"""
