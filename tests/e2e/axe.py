"""axe-core in the browser tests, offline: the engine is vendored under tests/e2e/vendor/axe-core
(axe-core from the npm registry, MPL-2.0, its LICENSE beside it) and evaluated into the page
through the DevTools protocol, so the pages' Content-Security-Policy need not allow it."""

from __future__ import annotations

from functools import cache
from pathlib import Path

AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"
BLOCKING = {"serious", "critical"}


@cache
def _source() -> str:
    return AXE.read_text(encoding="utf-8")


def serious_violations(page) -> list[str]:
    """The serious and critical axe violations on the current page, one line each."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(_source())
    violations = page.evaluate(
        "async () => (await window.axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))}))"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {', '.join(v['nodes'][:3])}"
        for v in violations
        if v["impact"] in BLOCKING
    ]


def assert_accessible(page) -> None:
    problems = serious_violations(page)
    assert not problems, f"axe on {page.url}:\n" + "\n".join(problems)
