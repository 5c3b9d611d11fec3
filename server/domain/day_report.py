"""The store's day in numbers (issue 27), from the day's orders: pure, the service reads them.

Definitions (README, "The store's day in numbers"):
- the day is a calendar day in the store's time zone; an order belongs to the day it was placed;
- revenue is the total of the day's orders that were picked up;
- accepted → ready is measured per hour of acceptance (that zone's hours): the mean and the 90th
  percentile (nearest rank);
- an order is late when it was ready more than `LATE_GRACE` after the ready time the product
  showed when the store accepted it. That estimate is not stored; it is replayed here with the
  same estimator (server/domain/eta.py) over the same queue: the store's finished orders before
  it (the week before the day included) and the orders accepted and not yet ready at that moment.
  A delay the store declared by hand is not known afterwards and is left out;
- a no-show is an order recorded as one (`no_show_at`, not cleared by an admin); cancellations
  are counted by reason;
- top items are the items of the day's orders that were not cancelled, by quantity;
- the cap was hit for an order when checkout placed it in a later slot than the one it was
  placed in, because its slot was full (`slot_deferred`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from server.domain.eta import Active, Finished, QueueWatch, estimate, learn
from server.domain.money import paise_to_rupees

LATE_GRACE = timedelta(minutes=1)
TOP_ITEMS = 10


@dataclass(frozen=True)
class DayOrder:
    order_id: str
    status: str
    total_paise: int
    created_at: datetime
    accepted_at: datetime | None
    ready_at: datetime | None
    cancelled_at: datetime | None
    cancellation_reason: str | None
    no_show: bool
    cap_hit: bool
    items: tuple[tuple[str, int, int], ...] = field(default=())  # (name, quantity, total paise)


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile: the smallest value with at least `share` of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def replay_estimates(before: list[Finished], orders: list[DayOrder]) -> dict[str, datetime]:
    """The ready time the product showed for each of the day's orders when it was accepted."""
    watch = QueueWatch(history=list(before))
    created = {o.order_id: o.created_at for o in orders}
    moments: list[tuple[datetime, int, DayOrder]] = []
    for o in orders:
        if o.accepted_at is None:
            continue
        moments.append((o.accepted_at, 1, o))
        end = o.ready_at or o.cancelled_at
        if end is not None:
            moments.append((end, 0, o))  # at one instant, a ready frees the kitchen before an acceptance
    moments.sort(key=lambda m: (m[0], m[1]))
    shown: dict[str, datetime] = {}
    kitchen = None  # what the estimator learned; it changes only when an order is ready
    for at, kind, o in moments:
        if kind == 1:
            watch.on_accepted(o.order_id, at)
            kitchen = kitchen or learn(watch.history, at)
            queue = [Active(oid, since, created[oid]) for oid, (since, _) in watch.accepted.items()]
            shown[o.order_id] = estimate(queue, kitchen, at)[o.order_id]
        elif o.ready_at is not None and at == o.ready_at:
            watch.on_ready(o.order_id, at)
            kitchen = None
        else:
            watch.on_gone(o.order_id)
    return shown


def _minutes(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"count": 0, "averageMinutes": None, "p90Minutes": None}
    return {"count": len(values), "averageMinutes": round(sum(values) / len(values), 2),
            "p90Minutes": round(percentile(values, 0.9), 2)}


def day_report(orders: list[DayOrder], before: list[Finished], zone: tzinfo) -> dict[str, Any]:
    shown = replay_estimates(before, orders)
    statuses = Counter(o.status for o in orders)
    reasons = Counter(o.cancellation_reason or "unknown" for o in orders if o.status == "cancelled")
    hours: dict[int, list[float]] = defaultdict(list)
    late = measured = 0
    for o in orders:
        if o.accepted_at is None or o.ready_at is None:
            continue
        hours[o.accepted_at.astimezone(zone).hour].append((o.ready_at - o.accepted_at).total_seconds() / 60)
        measured += 1
        if o.ready_at > shown[o.order_id] + LATE_GRACE:
            late += 1
    quantities: Counter[str] = Counter()
    revenue_by_item: Counter[str] = Counter()
    for o in orders:
        if o.status == "cancelled":
            continue
        for name, quantity, total in o.items:
            quantities[name] += quantity
            revenue_by_item[name] += total
    everything = [m for values in hours.values() for m in values]
    return {
        "orders": len(orders),
        "byStatus": dict(sorted(statuses.items())),
        "revenue": paise_to_rupees(sum(o.total_paise for o in orders if o.status == "picked_up")),
        "prepTime": _minutes(everything),
        "hours": [{"hour": hour, **_minutes(values)} for hour, values in sorted(hours.items())],
        "late": {"count": late, "of": measured, "graceMinutes": LATE_GRACE.total_seconds() / 60},
        "noShows": sum(1 for o in orders if o.no_show),
        "cancellations": {"total": sum(reasons.values()), "byReason": dict(sorted(reasons.items()))},
        "topItems": [{"name": name, "quantity": quantity, "revenue": paise_to_rupees(revenue_by_item[name])}
                     for name, quantity in sorted(quantities.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_ITEMS]],
        "capHit": sum(1 for o in orders if o.cap_hit),
    }
