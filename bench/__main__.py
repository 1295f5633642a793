"""``make bench``: run every case against fresh test databases and write results.json + RESULTS.md.

Usage: python -m bench [--strict] [--only NAME ...]; with ``--only`` the other cases keep their last
figures in the reports. Needs DATABASE_URL (and
USERDATA_DATABASE_URL) on PostgreSQL for figures that mean anything, and CELERY_BROKER_URL on
Redis for ``query_end_to_end``, which starts its own worker process. The databases used are
Django's test databases (``test_`` + the configured names), created and dropped by the run.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--strict", action="store_true", help="exit non-zero when a target is missed")
    parser.add_argument("--only", nargs="*", default=None, help="run only these cases")
    args = parser.parse_args()

    import django

    django.setup()
    from django.conf import settings

    if not settings.DATABASES["default"]["ENGINE"].endswith(".postgresql"):
        print(
            "make bench measures Custos on PostgreSQL (its figures are the production database's, and several "
            "cases use PostgreSQL's own SQL); the embedded SQLite default has no figures to offer.\n"
            "Run it with DATABASE_URL and USERDATA_DATABASE_URL set to postgres:// URLs (and CELERY_BROKER_URL "
            "to a redis:// URL for query_end_to_end), e.g.:\n"
            "  DATABASE_URL=postgres://postgres@127.0.0.1:5432/custos_bench "
            "USERDATA_DATABASE_URL=postgres://postgres@127.0.0.1:5432/custos_bench_userdata "
            "CELERY_BROKER_URL=redis://127.0.0.1:6379/5 make bench",
            file=sys.stderr,
        )
        return 2
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from . import cases
    from .framework import machine, write_reports

    unknown = sorted(set(args.only or ()) - set(cases.CASES))
    if unknown:
        parser.error(f"unknown case(s): {', '.join(unknown)}; known: {', '.join(cases.CASES)}")
    setup_test_environment()
    settings.AUDIT_CHECKPOINT_DIR = Path(tempfile.mkdtemp(prefix="bench-checkpoints-"))
    old_config = setup_databases(verbosity=0, interactive=False, aliases={"default", "userdata"})
    started = time.perf_counter()
    results = []
    try:
        info = machine()
        for name, case in cases.CASES.items():
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", flush=True)
            case_started = time.perf_counter()
            result = case()
            result.description = " ".join((case.__doc__ or "").split())
            result.extra["case_seconds"] = round(time.perf_counter() - case_started, 1)
            print(
                f"  {result.name}: {result.ratio} {result.unit} (target {result.target}) "
                f"{'ok' if result.passed else 'MISSED'} in {result.extra['case_seconds']} s",
                flush=True,
            )
            results.append(result)
        elapsed = time.perf_counter() - started
        write_reports(
            results, Path(__file__).parent, info, seconds=elapsed, partial=bool(args.only), known=set(cases.CASES)
        )
    finally:
        teardown_databases(old_config, verbosity=0)
    missed = [result.name for result in results if not result.passed]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
