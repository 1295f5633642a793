"""``make bench``: run every case against fresh test databases and write results.json + RESULTS.md.

Usage: python -m bench [--strict] [--only NAME ...]. Needs DATABASE_URL on PostgreSQL for
figures that mean anything (the Makefile points it at a local server by default).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--strict", action="store_true", help="exit non-zero when a target is missed")
    parser.add_argument("--only", nargs="*", default=None, help="run only these cases")
    args = parser.parse_args()

    import django

    django.setup()
    from django.test.utils import setup_databases, setup_test_environment, teardown_databases

    from . import cases
    from .framework import machine, write_reports

    setup_test_environment()
    old_config = setup_databases(verbosity=0, interactive=False, aliases={"default", "userdata"})
    try:
        results = []
        for name, case in cases.CASES.items():
            if args.only and name not in args.only:
                continue
            print(f"running {name} ...", flush=True)
            result = case()
            print(f"  {result.name}: {result.ratio} (target {result.target}) {'ok' if result.passed else 'MISSED'}")
            results.append(result)
        write_reports(results, Path(__file__).parent, machine())
    finally:
        teardown_databases(old_config, verbosity=0)
    missed = [result.name for result in results if not result.passed]
    if missed:
        print(f"targets missed: {', '.join(missed)}")
    return 1 if (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
