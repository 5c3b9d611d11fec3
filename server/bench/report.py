"""Scenario results: the printed table and the --json document."""

from __future__ import annotations

import math
import os
import platform
import sys
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import orjson


@dataclass
class Measurement:
    """One reported number, with the target it is judged against when there is one."""

    key: str
    label: str
    value: float | str | None
    unit: str = ""
    target: str | None = None
    met: bool | None = None


@dataclass
class ScenarioResult:
    scenario: str
    params: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    # Latency distributions in milliseconds: name → {count, p50, p90, p99, max, mean}.
    distributions: dict[str, dict[str, float]] = field(default_factory=dict)
    # Series for charts: name → [(seconds since start, value)].
    timelines: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # False when the run was smaller than the size a target is defined for: no verdict then.
    at_target_size: bool = True

    def add(self, key: str, label: str, value: float | str | None, unit: str = "",
            target: str | None = None, met: bool | None = None) -> None:
        if not self.at_target_size or value is None or (isinstance(value, float) and math.isnan(value)):
            met = None
        self.measurements.append(Measurement(key, label, value, unit, target, met))

    def add_distribution(self, name: str, label: str, summary: dict[str, float],
                         targets: dict[str, float] | None = None) -> None:
        """Record a latency summary and one table row per percentile (targets are upper bounds in ms)."""
        self.distributions[name] = summary
        targets = targets or {}
        for stat in ("p50", "p90", "p99", "max"):
            value = summary.get(stat)
            bound = targets.get(stat)
            self.add(f"{name}_{stat}_ms", f"{label} {stat}", value, "ms",
                     f"< {bound:g} ms" if bound is not None else None,
                     (value < bound) if bound is not None and value is not None else None)

    def value(self, key: str) -> float | str | None:
        for m in self.measurements:
            if m.key == key:
                return m.value
        return None

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "params": self.params,
            "atTargetSize": self.at_target_size,
            "measurements": {m.key: {"label": m.label, "value": _clean(m.value), "unit": m.unit,
                                     "target": m.target, "met": m.met} for m in self.measurements},
            "distributions": {k: {s: _clean(v) for s, v in d.items()} for k, d in self.distributions.items()},
            "timelines": {k: [[round(t, 3), _clean(v)] for t, v in series] for k, series in self.timelines.items()},
            "notes": self.notes,
        }


def _clean(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def format_value(value: float | str | None, unit: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, str):
        return value
    if unit == "ms":
        text = f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    elif unit in ("reads", "cmds") or (unit == "s" and abs(value) < 1):
        text = f"{value:,.3f}"
    elif unit == "x" and abs(value) < 0.1:
        text = f"{value:.4f}"
    elif unit in ("KiB", "s", "x"):
        text = f"{value:,.2f}"
    elif abs(value) >= 100 or float(value).is_integer():
        text = f"{value:,.0f}"
    else:
        text = f"{value:,.2f}"
    return f"{text} {unit}".rstrip()


def render_table(results: list[ScenarioResult], out: TextIO) -> None:
    rows = [("scenario", "measurement", "value", "target", "met")]
    for result in results:
        for m in result.measurements:
            verdict = "" if m.target is None else ("-" if m.met is None else ("yes" if m.met else "NO"))
            rows.append((result.scenario, m.label, format_value(m.value, m.unit), m.target or "", verdict))
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    aligns = ["<", "<", ">", "<", "<"]
    for index, row in enumerate(rows):
        out.write("  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, aligns, widths)).rstrip() + "\n")
        if index == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    for result in results:
        if not result.at_target_size:
            out.write(f"{result.scenario}: run below the target size; '-' means no verdict.\n")
        for note in result.notes:
            out.write(f"{result.scenario}: {note}\n")


def machine_facts(load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """What the numbers depend on: cores, CPU model, and the load average before and after the run."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpus": os.cpu_count(), "cpuModel": model, "loadAverageAtStart": list(load_at_start),
            "loadAverageAtEnd": list(os.getloadavg())}


def write_json(path: Path, results: list[ScenarioResult], urls: list[str], argv: list[str],
               machine: dict[str, Any] | None = None) -> None:
    document = {
        "tool": "orderpulse-bench",
        "generatedAt": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "targets": urls,
        "command": argv,
        "client": {"python": sys.version.split()[0], "platform": platform.platform()},
        "machine": machine or {},
        "scenarios": [r.as_json() for r in results],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
