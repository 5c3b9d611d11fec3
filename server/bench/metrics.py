"""What the server says about itself: Prometheus `/metrics`, and /proc when its pid is known."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from server.bench.api import Api
from server.bench.stats import histogram_quantile

READ_COMMANDS = ("find", "aggregate", "count")


@dataclass
class MetricsSnapshot:
    """One scrape: every sample as (name, sorted labels) → value."""

    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float]

    @classmethod
    def parse(cls, text: str) -> MetricsSnapshot:
        """Read a Prometheus text exposition with prometheus_client's own parser."""
        return cls({(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                    for family in text_string_to_metric_families(text) for sample in family.samples})

    def has(self, name: str) -> bool:
        return any(n == name for n, _ in self.samples)

    def total(self, name: str, **labels: str) -> float | None:
        """Sum of every sample of `name` whose labels include `labels`; None if there is none."""
        found = [v for (n, ls), v in self.samples.items()
                 if n == name and all((k, want) in ls for k, want in labels.items())]
        return sum(found) if found else None

    def label_values(self, name: str, label: str) -> dict[str, float]:
        out: dict[str, float] = {}
        for (n, ls), v in self.samples.items():
            if n == name:
                for k, value in ls:
                    if k == label:
                        out[value] = out.get(value, 0.0) + v
        return out

    def buckets(self, name: str) -> list[tuple[float, float]]:
        """Cumulative buckets of a histogram, summed over its other labels."""
        merged: dict[float, float] = {}
        for (n, ls), v in self.samples.items():
            if n == name + "_bucket":
                le = dict(ls).get("le")
                if le is not None:
                    bound = math.inf if le in ("+Inf", "Inf") else float(le)
                    merged[bound] = merged.get(bound, 0.0) + v
        return sorted(merged.items())


def delta(before: MetricsSnapshot, after: MetricsSnapshot, name: str, **labels: str) -> float | None:
    a, b = after.total(name, **labels), before.total(name, **labels)
    if a is None:
        return None
    return a - (b or 0.0)


def db_reads(before: MetricsSnapshot, after: MetricsSnapshot) -> float | None:
    """Read commands (find + aggregate + count) between two scrapes; None without the counter."""
    if not after.has("orderpulse_db_commands_total"):
        return None
    b = before.label_values("orderpulse_db_commands_total", "command")
    a = after.label_values("orderpulse_db_commands_total", "command")
    return sum(a.get(c, 0.0) - b.get(c, 0.0) for c in READ_COMMANDS)


def db_commands(before: MetricsSnapshot, after: MetricsSnapshot) -> dict[str, float]:
    b = before.label_values("orderpulse_db_commands_total", "command")
    a = after.label_values("orderpulse_db_commands_total", "command")
    return {c: a[c] - b.get(c, 0.0) for c in sorted(a) if a[c] - b.get(c, 0.0)}


@dataclass
class HistogramDelta:
    count: float
    sum: float
    buckets: list[tuple[float, float]]

    def quantile(self, q: float) -> float:
        return histogram_quantile(q, self.buckets)

    @property
    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan


def histogram_delta(before: MetricsSnapshot, after: MetricsSnapshot, name: str) -> HistogramDelta | None:
    """The observations of a histogram between two scrapes; None if the server has no such metric."""
    if not after.has(name + "_count"):
        return None
    old = dict(before.buckets(name))
    buckets = [(bound, count - old.get(bound, 0.0)) for bound, count in after.buckets(name)]
    return HistogramDelta(
        count=(after.total(name + "_count") or 0.0) - (before.total(name + "_count") or 0.0),
        sum=(after.total(name + "_sum") or 0.0) - (before.total(name + "_sum") or 0.0),
        buckets=buckets,
    )


class ServerProbe:
    """Server CPU and memory: from /proc when its pid is known, from /metrics otherwise."""

    def __init__(self, api: Api, pid: int | None = None) -> None:
        self.api = api
        self.pid = pid
        self._ticks = os.sysconf("SC_CLK_TCK")

    async def scrape(self) -> MetricsSnapshot:
        return MetricsSnapshot.parse(await self.api.text("/metrics"))

    @property
    def source(self) -> str:
        return f"/proc/{self.pid}" if self.pid else "/metrics"

    async def rss_bytes(self, snapshot: MetricsSnapshot | None = None) -> float | None:
        if self.pid:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) * 1024
        snapshot = snapshot or await self.scrape()
        return snapshot.total("process_resident_memory_bytes")

    async def cpu_seconds(self, snapshot: MetricsSnapshot | None = None) -> float | None:
        """CPU of the server process itself (user + system)."""
        if self.pid:
            return self._proc_cpu(self.pid)
        snapshot = snapshot or await self.scrape()
        return snapshot.total("process_cpu_seconds_total")

    def tree_cpu_seconds(self) -> float | None:
        """CPU of the server and its live descendants (the embedded database runs as a child)."""
        if not self.pid:
            return None
        return sum(self._proc_cpu(p) for p in self._tree(self.pid))

    def _proc_cpu(self, pid: int) -> float:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self._ticks

    @staticmethod
    def _tree(root: int) -> list[int]:
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        found, stack = [], [root]
        while stack:
            pid = stack.pop()
            found.append(pid)
            stack.extend(children.get(pid, []))
        return found
