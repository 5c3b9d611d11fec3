"""When an order will be ready: the store's live queue run forward on what this kitchen has
been doing lately (issue 12). Pure: the caller passes the queue, the recent history and the time.

The kitchen is modelled as `cooks` orders prepared at once, each taking about `prep` minutes, first
come first served. Both are learned from the store's own recent orders:

- `prep`, the time one order takes once someone is on it: the mean of recent accepted → ready
  times of orders that had nobody ahead of them when accepted (their time was all cooking);
  without enough of those, the lower quartile of all recent times.
- `cooks`, how many go at once: each order ahead adds about `prep / cooks` minutes to a wait, so
  `prep` over the slope of recent waits against the queue length they met.

With fewer than `MIN_HISTORY` finished orders the defaults stand in. A delay the store declares
("+10 min") is added to every estimate.
"""

from __future__ import annotations

import heapq
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

DEFAULT_PREP_MINUTES = 8.0
DEFAULT_COOKS = 2
MIN_HISTORY = 3
HISTORY_SIZE = 200  # finished orders remembered per store: about a day of lunches
MAX_COOKS = 12
# An order being prepared for longer than expected is still expected a little later, not "now".
OVERDUE_FLOOR = 0.15


@dataclass(frozen=True)
class Finished:
    """One recent order of the store: when it was accepted and when it was ready, and how many
    orders were ahead of it (accepted, not yet ready) when it was accepted."""

    accepted_at: datetime
    ready_at: datetime
    ahead_when_accepted: int

    @property
    def minutes(self) -> float:
        return (self.ready_at - self.accepted_at).total_seconds() / 60


@dataclass(frozen=True)
class Active:
    """An order still to be ready: `since` is when it was accepted (None: placed, not yet accepted)."""

    order_id: str
    since: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Kitchen:
    prep_minutes: float
    cooks: int
    learned: bool


def learn(history: list[Finished], now: datetime) -> Kitchen:
    """The kitchen's recent pace, from its finished orders (newest last)."""
    recent = history[-HISTORY_SIZE:]
    if len(recent) < MIN_HISTORY:
        return Kitchen(DEFAULT_PREP_MINUTES, DEFAULT_COOKS, learned=False)
    unqueued = [item.minutes for item in recent if item.ahead_when_accepted == 0]
    if len(unqueued) >= MIN_HISTORY:
        prep = statistics.fmean(unqueued)
    else:
        prep = statistics.quantiles([item.minutes for item in recent], n=4)[0]
    prep = max(prep, 0.5)
    # Each order ahead adds about prep / cooks minutes: the slope of wait over queue length.
    queued = [item for item in recent if item.ahead_when_accepted > 0]
    cooks = DEFAULT_COOKS
    if len(queued) >= MIN_HISTORY and len({item.ahead_when_accepted for item in queued}) > 1:
        slope, _ = statistics.linear_regression([float(item.ahead_when_accepted) for item in queued],
                                                [item.minutes for item in queued])
        if slope > 0:
            cooks = min(MAX_COOKS, max(1, round(prep / slope)))
    return Kitchen(prep, cooks, learned=True)


def estimate(active: list[Active], kitchen: Kitchen, now: datetime,
             delay_minutes: float = 0.0) -> dict[str, datetime]:
    """Each active order's expected ready time: the queue run forward first come, first served."""
    prep = timedelta(minutes=kitchen.prep_minutes)
    order = sorted(active, key=lambda item: (item.since is None, item.since or item.created_at, item.created_at))
    free_at = [now] * kitchen.cooks  # when each cook is next free
    heapq.heapify(free_at)
    estimates: dict[str, datetime] = {}
    for position, item in enumerate(order):
        start = heapq.heappop(free_at)
        if position < kitchen.cooks and item.since is not None:
            # Being prepared now: due `prep` after it was accepted, or a little later if overdue.
            ready = max(item.since + prep, now + prep * OVERDUE_FLOOR)
        else:
            ready = start + prep
        heapq.heappush(free_at, ready)
        estimates[item.order_id] = ready + timedelta(minutes=delay_minutes)
    return estimates


def finished_from_spans(spans: Sequence[tuple[datetime, datetime | None]]) -> list[Finished]:
    """Orders as (accepted, ready or None while still active) → the finished ones, oldest ready
    first, each with how many were accepted before it and not yet ready when it was accepted
    (what `QueueWatch` counts as orders come and go)."""
    out = []
    for accepted_at, ready_at in spans:
        if ready_at is None:
            continue
        ahead = sum(1 for other_at, other_ready in spans
                    if other_at < accepted_at and (other_ready is None or other_ready > accepted_at))
        out.append(Finished(accepted_at, ready_at, ahead))
    return sorted(out, key=lambda item: item.ready_at)


def baseline(history: list[Finished], accepted_at: datetime) -> datetime:
    """The naive estimate the bench compares against: the store's average accepted → ready time."""
    recent = history[-HISTORY_SIZE:]
    minutes = statistics.fmean(item.minutes for item in recent) if recent else DEFAULT_PREP_MINUTES
    return accepted_at + timedelta(minutes=minutes)


@dataclass
class QueueWatch:
    """The per-store bookkeeping an estimator keeps as orders come and go (also used by the bench)."""

    history: list[Finished] = field(default_factory=list)
    accepted: dict[str, tuple[datetime, int]] = field(default_factory=dict)

    def on_accepted(self, order_id: str, at: datetime) -> None:
        self.accepted[order_id] = (at, len(self.accepted))

    def on_ready(self, order_id: str, at: datetime) -> None:
        started = self.accepted.pop(order_id, None)
        if started is not None:
            self.history.append(Finished(started[0], at, started[1]))
            del self.history[:-HISTORY_SIZE]

    def on_gone(self, order_id: str) -> None:
        self.accepted.pop(order_id, None)
