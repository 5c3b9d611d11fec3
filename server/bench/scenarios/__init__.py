"""One module per scenario; each has NAME, HELP, DEFAULTS and `async run(ctx) -> ScenarioResult`."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any

from server.bench.api import Api
from server.bench.cost import CostWindow, Processes
from server.bench.fixtures import Population
from server.bench.metrics import ServerProbe
from server.bench.progress import Progress
from server.bench.target import Target


@dataclass
class Context:
    """Everything a scenario needs: where to send load, who to send it as, and what to read back."""

    targets: list[Target]
    apis: list[Api]  # one per target, same order
    population: Population
    probe: ServerProbe  # of the first target
    progress: Progress
    args: argparse.Namespace
    defaults: dict[str, Any]
    overrides: dict[str, Any] = field(default_factory=dict)  # this scenario's `all --set` values
    processes: Processes = field(default_factory=Processes)  # server and database pids, for CPU

    async def cost_window(self) -> CostWindow:
        """Start reading CPU and database commands for a measured window (close it with the rows)."""
        return await CostWindow(self.processes, self.apis).open()

    @property
    def api(self) -> Api:
        return self.apis[0]

    @property
    def publish_api(self) -> Api:
        """Where changes are made: the first URL."""
        return self.apis[0]

    @property
    def subscribe_target(self) -> Target:
        """Where subscribers connect: the second URL when two are given (cross-process fan-out)."""
        return self.targets[-1]

    def option(self, name: str) -> Any:
        """This scenario's `--set` value, else the command-line flag, else the scenario's default."""
        if name in self.overrides:
            return self.overrides[name]
        value = getattr(self.args, name, None)
        return self.defaults[name] if value is None else value


def scenario_modules() -> list[Any]:
    from server.bench.scenarios import (checkout, deadlines, eta, fanout, latency, poll, push_vs_poll, report,
                                        sockets, webhooks)

    return [poll, sockets, fanout, latency, checkout, push_vs_poll, deadlines, eta, webhooks, report]
