"""``make loadtest``: many people at once against gunicorn, PostgreSQL, Redis and a real worker.

Usage: python -m bench.load [--users 50] [--duration 75] [--port 8765] [--web-workers 2]
       [--web-threads 4] [--worker-concurrency 2] [--out bench/LOAD.md]

1. Drops and recreates its own PostgreSQL databases (``LOAD_DATABASE_URL``,
   ``LOAD_USERDATA_DATABASE_URL``; default ``custos_load`` and ``custos_load_ud`` on
   127.0.0.1) and uses its own Redis database (``LOAD_REDIS_URL``, default db 14) as the
   broker and the shared cache (throttle counters).
2. Migrates and seeds through the actions (bench/load/seed.py).
3. Starts gunicorn and a Celery worker (with beat) on 127.0.0.1, each in its own session.
4. Runs locust headless for a fixed number of users and a fixed time (bench/load/locustfile.py).
5. Waits for the queries still queued, then checks in the database that every accepted query
   ended exactly once (one ``query.requested`` and one ``query.completed`` event each), that
   every decision is on the ledger once, that no sequence number is duplicated, and runs
   ``manage.py verify_audit`` (which seals first; afterwards no event may wait unsealed).
   Numbers skipped by writers that rolled back are counted, not failed: the chain links over them.
6. Writes bench/LOAD.md and stops every process it started (also on Ctrl-C or an error).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

from bench.load import AT_SIGN_IN

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BIN = Path(PYTHON).parent
PASSWORD = "load-test-password-2026"  # noqa: S105  (accounts of a throwaway database)
STOP_WAIT = 20


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.load")
    parser.add_argument("--users", type=int, default=int(os.environ.get("LOAD_USERS", 50)))
    parser.add_argument("--duration", type=int, default=int(os.environ.get("LOAD_DURATION", 75)), help="seconds")
    parser.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second")
    parser.add_argument("--port", type=int, default=int(os.environ.get("LOAD_PORT", 8765)))
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--worker-concurrency", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "LOAD.md"))
    return parser.parse_args()


def _environment(args: argparse.Namespace, var_dir: Path) -> dict[str, str]:
    redis = os.environ.get("LOAD_REDIS_URL", "redis://127.0.0.1:6379/14")
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": os.environ.get("LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/custos_load"),
        "USERDATA_DATABASE_URL": os.environ.get(
            "LOAD_USERDATA_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/custos_load_ud"
        ),
        "CELERY_BROKER_URL": redis,
        "CACHE_URL": redis,
        "CUSTOS_VAR_DIR": str(var_dir),
        # Every locust user signs in from 127.0.0.1: the per-address token throttle (10/minute)
        # would refuse all but ten of them. The per-user query throttle stays as configured.
        "API_THROTTLE_AUTH_TOKEN": "10000/minute",
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        "LOAD_PASSWORD": PASSWORD,
        "LOAD_USERS": str(args.users),
    }


def _recreate_databases(env: dict[str, str]) -> None:
    import psycopg

    for key in ("DATABASE_URL", "USERDATA_DATABASE_URL"):
        url = urlparse(env[key])
        name = url.path.lstrip("/")
        admin = url._replace(path="/postgres").geturl()
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')


class Processes:
    """gunicorn and the worker, each in a session of its own; stopped by SIGTERM, then killed."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.children: dict[str, subprocess.Popen] = {}

    def start(self, name: str, command: list[str]) -> None:
        log = open(self.logs / f"{name}.log", "w")  # noqa: SIM115  (closed with the process)
        self.children[name] = subprocess.Popen(
            command,
            cwd=ROOT,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return all(child.poll() is None for child in self.children.values())

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT
        for child in self.children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        for child in self.children.values():  # the process groups' leftovers (pool children)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)


def _wait_ready(port: int, worker_ready: Path, processes: Processes, limit: float = 120) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if not processes.alive():
            raise SystemExit("a server process exited during start-up; see its log in the var directory")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200 and worker_ready.exists():
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise SystemExit(f"the web or the worker did not come up within {limit:.0f} s")


def _drain(limit: float = 90) -> int:
    """Seconds waited until no query is queued or running (or ``limit``)."""
    from investigations.models import DataQuery

    started = time.monotonic()
    while time.monotonic() - started < limit:
        if not DataQuery.objects.filter(status__in=["queued", "running"]).exists():
            break
        time.sleep(1)
    return round(time.monotonic() - started)


def _checks(records: list[dict], seeded_queries: int, seeded_seq: int) -> dict:
    from django.db.models import Count, Max, Min

    from audit.events import Action
    from audit.models import AuditEvent
    from investigations.models import DataQuery

    submitted = [row["id"] for row in records if row["kind"] == "query"]
    statuses = Counter(DataQuery.objects.filter(pk__in=submitted).values_list("status", flat=True))
    unrecorded = DataQuery.objects.filter(pk__gt=seeded_queries).exclude(pk__in=submitted).count()

    def per_target(action, ids) -> Counter:
        rows = (
            AuditEvent.objects.filter(action=action, target_id__in=[str(pk) for pk in ids])
            .values("target_id")
            .annotate(n=Count("seq"))
        )
        return Counter({row["target_id"]: row["n"] for row in rows})

    requested = per_target(Action.QUERY_REQUESTED, submitted)
    completed = per_target(Action.QUERY_COMPLETED, submitted)
    decided = [row["request"] for row in records if row["kind"] == "decision"]
    decisions = per_target(Action.DECISION_RECORDED, decided)
    span = AuditEvent.objects.aggregate(first=Min("seq"), last=Max("seq"), n=Count("seq"))
    duplicated_seq = span["n"] - len(set(AuditEvent.objects.values_list("seq", flat=True)))
    verify = subprocess.run(
        [PYTHON, "manage.py", "verify_audit", "--no-progress"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    unsealed = AuditEvent.objects.filter(hash__isnull=True, seq__lte=span["last"] or 0).count()
    return {
        "submitted": len(submitted),
        "statuses": dict(statuses),
        "unrecorded": unrecorded,
        "requested_once": sum(1 for pk in submitted if requested[str(pk)] == 1),
        "completed_once": sum(1 for pk in submitted if completed[str(pk)] == 1),
        "completed_twice": sum(1 for pk in submitted if completed[str(pk)] > 1),
        "decisions": len(decided),
        "decisions_once": sum(1 for pk in decided if decisions[str(pk)] >= 1),
        "events": span["n"],
        "events_during_run": span["n"] - seeded_seq,
        "seq_gaps": (span["last"] - span["first"] + 1) - span["n"],
        "unsealed": unsealed,
        "seq_duplicates": duplicated_seq,
        "verify_ok": verify.returncode == 0,
        "verify_text": (verify.stdout + verify.stderr).strip().splitlines()[-1:] or [""],
    }


def _stats(csv_path: Path) -> list[dict]:
    with open(csv_path) as handle:
        return [row for row in csv.DictReader(handle)]




def _write(out: Path, args, stats, checks, records, drained, started_at, cores, load_at_start) -> bool:
    rows = [row for row in stats if row["Name"] != "Aggregated"]
    trivial = next(float(row["95%"]) for row in rows if row["Name"] == "me (trivial)")
    server_errors = [row for row in records if row["kind"] == "server_error"]
    races = sum(1 for row in records if row["kind"] == "race_lost")
    limit = 5 * trivial
    lines = [
        "# Load test (`make loadtest`)",
        "",
        f"Run {started_at:%Y-%m-%d %H:%M} UTC: {args.users} users for {args.duration} s (spawn rate "
        f"{args.spawn_rate:g}/s), gunicorn {args.web_workers} workers x {args.web_threads} threads, one Celery "
        f"worker (concurrency {args.worker_concurrency}, with beat), PostgreSQL and Redis, all on 127.0.0.1, "
        f"{cores} cores; load average at the start {load_at_start[0]:.2f} (1 min), {load_at_start[1]:.2f} (5 min). "
        "Written by `python -m bench.load`; times in ms.",
        "",
        "| endpoint | requests | failures | p50 | p95 | p99 | max | p95 / trivial p95 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    over = []
    for row in rows:
        p95 = float(row["95%"])
        ratio = p95 / trivial if trivial else float("inf")
        timed = row["Name"] != "query end to end"  # end to end includes the worker's queue and polls
        if timed and ratio > 5 and row["Name"] != "auth/token" and not row["Name"].endswith(AT_SIGN_IN):
            over.append(row["Name"])
        lines.append(
            f"| `{row['Type']} {row['Name']}` | {row['Request Count']} | {row['Failure Count']} | {row['50%']} | "
            f"{row['95%']} | {row['99%']} | {float(row['Max Response Time']):.0f} | {ratio:.1f}x |"
        )
    statuses = ", ".join(f"{status}: {n}" for status, n in sorted(checks["statuses"].items())) or "none"
    ended = checks["submitted"] == checks["completed_once"] == checks["requested_once"]
    lost_or_dup = (
        checks["submitted"]
        - checks["requested_once"]
        + checks["submitted"]
        - checks["completed_once"]
        + checks["decisions"]
        - checks["decisions_once"]
        + checks["unsealed"]
        + checks["seq_duplicates"]
    )
    targets = [
        ("0 server errors (5xx)", not server_errors, str(len(server_errors))),
        ("0 lost or duplicated audit events", lost_or_dup == 0 and checks["verify_ok"], str(lost_or_dup)),
        (
            "every submitted query completes exactly once",
            ended and not checks["unrecorded"],
            f"{checks['completed_once']} of {checks['submitted']}",
        ),
        (
            f"p95 of each endpoint <= 5x trivial p95 ({trivial:.0f} ms, so {limit:.0f} ms)",
            not over,
            ", ".join(over) or "all within",
        ),
    ]
    lines += [
        "",
        "`GET me (trivial)` is the trivial authenticated endpoint every p95 is compared with. "
        "`query end to end` is submission to a finished status seen by polling every 250 ms (it "
        "includes the worker's queue); `POST auth/token` is each user's one sign-in (password "
        "hashing); the calls marked `(at sign-in)` were made while users were still signing in (each "
        "investigator's first lists, and every call of any user made before the last sign-in ended), "
        "so they measure that burst; the unmarked rows are the steady run: all marked rows are outside "
        "the 5x target, for every endpoint alike, the trivial one included.",
        "",
        "## The database afterwards",
        "",
        f"- Queries accepted (202): {checks['submitted']}; their status after a drain of {drained} s: {statuses}.",
        f"- `query.requested` exactly once: {checks['requested_once']}; `query.completed` exactly once: "
        f"{checks['completed_once']}, more than once: {checks['completed_twice']}; query rows no user was "
        f"told about: {checks['unrecorded']}.",
        f"- Decisions answered 2xx: {checks['decisions']}, each on the ledger: {checks['decisions_once']}; "
        f"decisions that lost a race to another reviewer (404/409, not errors): {races}.",
        f"- Ledger: {checks['events']} events ({checks['events_during_run']} during the run and the checks), "
        f"numbers skipped by rolled-back writers {checks['seq_gaps']} (the chain links over them), duplicates "
        f"{checks['seq_duplicates']}, left unsealed after verification {checks['unsealed']}; `manage.py verify_audit`: "
        f"{'OK' if checks['verify_ok'] else 'FAILED'} ({checks['verify_text'][0]}).",
        f"- Server errors: {len(server_errors)}"
        + (": " + "; ".join(f"{row['name']} {row['status']}" for row in server_errors[:10]) if server_errors else "."),
        f"- Requests with no answer (connection reset or refused, counted as failures above): "
        f"{sum(1 for row in records if row['kind'] == 'no_answer')}.\n"
        "- Other 4xx answers (the client's fault, counted as failures above): "
        + (
            "; ".join(
                f"{name} {status}: {n}"
                for (name, status), n in sorted(
                    Counter((row["name"], row["status"]) for row in records if row["kind"] == "client_error").items()
                )
            )
            or "none"
        )
        + ".",
        "",
        "## Targets",
        "",
        "| target | met | figure |",
        "|---|---|---|",
        *[f"| {name} | {'yes' if met else '**no**'} | {figure} |" for name, met, figure in targets],
        "",
    ]
    notes = ROOT / "bench" / "load" / "NOTES.md"
    if notes.exists():
        lines += [notes.read_text().strip(), ""]
    out.write_text("\n".join(lines))
    return all(met for _, met, _ in targets)


def main() -> int:
    args = _args()
    started_at = datetime.now(UTC)
    load_at_start = os.getloadavg()  # before this run's own processes: what else shared the machine
    var_dir = ROOT / "var" / "load"
    var_dir.mkdir(parents=True, exist_ok=True)
    env = _environment(args, var_dir)
    out_records = var_dir / "records.jsonl"
    out_records.unlink(missing_ok=True)
    env["LOAD_OUT"] = str(out_records)
    os.environ.update(env)

    print("load: recreating the databases, migrating, seeding ...", flush=True)
    _recreate_databases(env)
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    call_command("migrate_all")
    from audit.models import AuditEvent
    from bench.load.seed import seed
    from investigations.models import DataQuery

    seed(args.users, PASSWORD)
    seeded_queries = DataQuery.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    seeded_seq = AuditEvent.objects.count()
    connections.close_all()

    worker_ready = var_dir / "run" / "worker.ready"
    worker_ready.parent.mkdir(parents=True, exist_ok=True)
    worker_ready.unlink(missing_ok=True)
    env["CUSTOS_WORKER_READY_FILE"] = str(worker_ready)
    processes = Processes(env, var_dir)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        processes.start(
            "web",
            [
                str(BIN / "gunicorn"),
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{args.port}",
                "--workers",
                str(args.web_workers),
                "--threads",
                str(args.web_threads),
                # Longer than any user's pause (1 to 4 s): with gunicorn's default of 2 s the server
                # closed idle connections as users reused them, and a POST sent as the close crossed
                # it got a reset (no answer, never retried), as a proxy in front would not let happen.
                "--keep-alive",
                "10",
                "--log-level",
                "warning",
            ],
        )
        processes.start(
            "worker",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "--quiet",
                "worker",
                "--beat",
                "--loglevel=WARNING",
                f"--concurrency={args.worker_concurrency}",
                "--hostname=custos-load@%h",
            ],
        )
        _wait_ready(args.port, worker_ready, processes)
        print(f"load: {args.users} users for {args.duration} s ...", flush=True)
        subprocess.run(
            [
                PYTHON,
                "-m",
                "locust",
                "-f",
                str(ROOT / "bench" / "load" / "locustfile.py"),
                "--headless",
                "--users",
                str(args.users),
                "--spawn-rate",
                str(args.spawn_rate),
                "--run-time",
                f"{args.duration}s",
                "--host",
                f"http://127.0.0.1:{args.port}",
                "--csv",
                str(var_dir / "locust"),
                "--only-summary",
                "--stop-timeout",
                "60",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**env, "PYTHONPATH": str(ROOT)},
            check=False,
        )
        print("load: draining the queue, checking the database and the ledger ...", flush=True)
        drained = _drain()
        records = [json.loads(line) for line in out_records.read_text().splitlines()] if out_records.exists() else []
        checks = _checks(records, seeded_queries, seeded_seq)
    finally:
        processes.stop()
        signal.signal(signal.SIGTERM, previous)
    stats = _stats(var_dir / "locust_stats.csv")
    met = _write(Path(args.out), args, stats, checks, records, drained, started_at, os.cpu_count(), load_at_start)
    print(Path(args.out).read_text())
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
