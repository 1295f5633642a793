"""Side-by-side ratio benchmarks.

Each case runs the thing under test and its baseline interleaved, in the same process,
over several rounds, and reports the median ratio with its spread. Absolute times on a
small shared machine are noise; ratios measured side by side are not.
"""

from __future__ import annotations

import gc
import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Result:
    name: str
    ratio: float
    target: str
    passed: bool
    n: int
    medians: dict[str, float]
    spread: tuple[float, float]
    unit: str = "ratio"
    note: str = ""
    extra: dict = field(default_factory=dict)
    description: str = ""

    def as_json(self) -> dict:
        data = asdict(self)
        data["pass"] = data.pop("passed")
        data["spread"] = list(self.spread)
        return data


def timed(function: Callable[[], object]) -> float:
    """Wall time of one call, with the garbage collector held off (it would land in one side only)."""
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        function()
        return time.perf_counter() - start
    finally:
        gc.enable()


def repeated(function: Callable[[], object], times: int) -> Callable[[], None]:
    """A block of ``times`` calls: operations of a millisecond are timed in blocks, not one by one."""

    def block() -> None:
        for _ in range(times):
            function()

    return block


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def statement_counter(aliases: tuple[str, ...] = ("default", "userdata")) -> Iterator[list[str]]:
    """Every SQL statement sent through a cursor on ``aliases`` while the block runs.

    An execute wrapper, not ``CaptureQueriesContext``: no 9,000-statement cap. BEGIN and
    COMMIT do not go through cursors, so they are not in the list.
    """
    from django.db import connections

    seen: list[str] = []

    def wrapper(execute, sql, params, many, context):
        seen.append(sql)
        return execute(sql, params, many, context)

    with ExitStack() as stack:
        for alias in aliases:
            stack.enter_context(connections[alias].execute_wrapper(wrapper))
        yield seen


def interleaved(
    subject: Callable[[], object],
    baseline: Callable[[], object],
    *,
    rounds: int,
    setup: Callable[[], object] | None = None,
) -> tuple[list[float], list[float]]:
    """Alternate subject and baseline (order flipped every round) and return both timings."""
    subject_times, baseline_times = [], []
    for round_number in range(rounds):
        pair = [(subject, subject_times), (baseline, baseline_times)]
        if round_number % 2:
            pair.reverse()
        for function, bucket in pair:
            if setup:
                setup()
            bucket.append(timed(function))
    return subject_times, baseline_times


def ratio_result(
    name: str,
    subject_times: list[float],
    baseline_times: list[float],
    *,
    target: str,
    check: Callable[[float], bool],
    note: str = "",
) -> Result:
    ratios = [s / b for s, b in zip(subject_times, baseline_times, strict=True) if b > 0]
    ratio = statistics.median(ratios)
    return Result(
        name=name,
        ratio=round(ratio, 3),
        target=target,
        passed=bool(check(ratio)),
        n=len(ratios),
        medians={"subject_s": statistics.median(subject_times), "baseline_s": statistics.median(baseline_times)},
        spread=(round(min(ratios), 3), round(max(ratios), 3)),
        note=note,
    )


def machine() -> dict:
    from django.db import connection

    info = {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT version()")
            info["database"] = "PostgreSQL " + cursor.fetchone()[0].split()[1]
            cursor.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN "
                "('synchronous_commit', 'fsync', 'shared_buffers', 'jit', 'max_connections')"
            )
            info["pg_settings"] = dict(cursor.fetchall())
        else:
            cursor.execute("SELECT sqlite_version()")
            info["database"] = f"SQLite {cursor.fetchone()[0]}"
    return info


PARTIAL = (
    " (a partial run, --only: the machine and load above are this run's; the cases it did not run keep the"
    " figures of their last run)"
)


def _merged(path: Path, fresh: list[dict]) -> list[dict]:
    try:
        earlier = json.loads(path.read_text())["cases"]
    except (OSError, ValueError, KeyError):
        return fresh
    names = {case["name"] for case in fresh}
    return [case for case in earlier if case["name"] not in names] + fresh


def _from_json(data: dict) -> Result:
    data = dict(data)
    data["passed"] = data.pop("pass")
    data["spread"] = tuple(data["spread"])
    return Result(**data)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def write_reports(
    results: list[Result],
    folder: Path,
    info: dict,
    *,
    seconds: float,
    partial: bool = False,
    known: set[str] | None = None,
) -> None:
    """results.json (machine-readable) and RESULTS.md (the table, then what each case measured)."""
    cases = [result.as_json() for result in results]
    if partial:  # keep the other cases' last figures (of cases that still exist); replace those that ran
        cases = [case for case in _merged(folder / "results.json", cases) if known is None or case["name"] in known]
        results = [_from_json(case) for case in cases]
    payload = {"machine": info, "seconds": round(seconds, 1), "partial": partial, "cases": cases}
    (folder / "results.json").write_text(json.dumps(payload, indent=2, default=str) + "\n")
    settings = ", ".join(f"{name}={value}" for name, value in sorted(info.get("pg_settings", {}).items()))
    lines = [
        "# Benchmark results",
        "",
        "Written by `make bench` (`python -m bench`); the figures below are from its last run.",
        "",
        f"Machine: {info['cores']} cores, {info['database']}, Python {info['python']}, {info['platform']}.",
        f"Database settings: {settings or 'n/a'}.",
        f"Load average when the run started: {', '.join(map(str, info['load_average_at_start']))} "
        "(the machine is shared: other processes were running, so absolute times are noisy; the ratios are not).",
        f"Whole run: {seconds:.0f} s{PARTIAL if partial else ''}.",
        "",
        "Each ratio is the median of per-round ratios, subject and baseline interleaved in one process "
        "(order flipped every round); spread is the lowest and highest per-round ratio.",
        "",
        "| case | ratio | target | pass | n | spread |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| `{result.name}` | {result.ratio} {'' if result.unit == 'ratio' else result.unit} | "
            f"{_cell(result.target)} | {'yes' if result.passed else 'NO'} | {result.n} | "
            f"{result.spread[0]}–{result.spread[1]} |"
        )
    for result in results:
        lines += ["", f"## `{result.name}`", "", result.description, ""]
        if result.note:
            lines += [result.note, ""]
        figures = {**{f"median {k}": v for k, v in result.medians.items()}, **result.extra}
        lines += [f"- {name}: {_figure(value)}" for name, value in figures.items()]
    (folder / "RESULTS.md").write_text("\n".join(lines) + "\n")


def _figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
