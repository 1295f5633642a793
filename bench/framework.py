"""Side-by-side ratio benchmarks.

Each case runs the thing under test and its baseline interleaved, in the same process,
over several rounds, and reports the median ratio with its spread. Absolute times on a
small shared machine are noise; ratios measured side by side are not.
"""

from __future__ import annotations

import json
import platform
import statistics
import time
from collections.abc import Callable
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

    def as_json(self) -> dict:
        data = asdict(self)
        data["pass"] = data.pop("passed")
        data["spread"] = list(self.spread)
        return data


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


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
    import os

    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()" if connection.vendor == "postgresql" else "SELECT sqlite_version()")
        version = cursor.fetchone()[0]
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "database": f"{connection.vendor} {version.split(' on ')[0]}",
        "platform": platform.platform(terse=True),
    }


def write_reports(results: list[Result], folder: Path, info: dict) -> None:
    payload = {"machine": info, "cases": [result.as_json() for result in results]}
    (folder / "results.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {info['cores']} cores, {info['database']}, Python {info['python']}.",
        "Each ratio is the median of per-round ratios, subject and baseline interleaved in one process.",
        "",
        "| case | ratio | target | pass | n | spread | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for result in results:
        lines.append(
            f"| `{result.name}` | {result.ratio} | {result.target} | {'yes' if result.passed else 'NO'} | "
            f"{result.n} | {result.spread[0]}–{result.spread[1]} | {result.note} |"
        )
    (folder / "RESULTS.md").write_text("\n".join(lines) + "\n")
