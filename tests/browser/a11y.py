"""The accessibility check of every page: axe-core (vendored, tests/browser/vendor) injected by
Playwright, run on the page as it is, failing on any serious or critical violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).parent / "vendor" / "axe.min.js"
BLOCKING = ("serious", "critical")


def axe_violations(page, impacts: tuple[str, ...] = BLOCKING) -> list[dict[str, Any]]:
    """axe's violations on the page now whose impact is one of `impacts`."""
    # Evaluated through DevTools, which the pages' Content-Security-Policy does not govern (a
    # <script> tag would be refused, as any injected script should be).
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_JS.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await window.axe.run(document, {resultTypes: ['violations']})")
    return [v for v in result["violations"] if v.get("impact") in impacts]


def describe(violations: list[dict[str, Any]]) -> str:
    """One line per violation and the elements it was found on, for an assertion message."""
    lines = []
    for violation in violations:
        targets = ", ".join(" ".join(node["target"]) for node in violation["nodes"][:5])
        lines.append(f"{violation['impact']}: {violation['id']} ({violation['help']}) on {targets}")
    return "\n".join(lines)


def assert_accessible(page, label: str = "") -> None:
    """No serious or critical axe-core violation on the page as it is now."""
    violations = axe_violations(page)
    assert not violations, f"axe-core on {label or page.url}:\n{describe(violations)}"
