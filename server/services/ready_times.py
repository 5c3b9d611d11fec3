"""Ready-time estimates of a store's active orders, from its live queue (server/domain/eta.py).

A store's estimates are computed from two reads (its active orders, its recently finished ones)
and kept until one of its orders changes or `CACHE_SECONDS` pass, so a busy tracking page or
kitchen costs no more than one computation per store and change.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId

from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.eta import HISTORY_SIZE, Active, Finished, estimate, learn
from server.domain.lifecycle import ACTIVE, OrderStatus
from server.models import Order, Store

CACHE_SECONDS = 15.0
# Only orders finished in this window teach the kitchen's pace: yesterday's lunch is history.
LEARNING_WINDOW = timedelta(days=7)
# The virtual order asked about for "about N min wait now" on the menu page.
NEXT_ORDER = "next"


class ReadyTimes:
    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._cache: dict[str, tuple[float, dict[str, datetime]]] = {}

    def order_changed(self, order: Order) -> None:
        """A change to one of a store's orders moves its queue: forget that store's estimates."""
        self._cache.pop(str(order.store_id), None)

    def store_changed(self, store_id: str) -> None:
        self._cache.pop(store_id, None)

    async def for_order(self, order: Order) -> datetime | None:
        """When this active order should be ready; None once it is ready or over."""
        if order.order_status not in ACTIVE or order.order_status == OrderStatus.READY:
            return None
        return (await self._store_estimates(str(order.store_id))).get(str(order.id))

    async def wait_minutes(self, store_id: str) -> int:
        """About how long a new order placed now would take, in whole minutes."""
        ready = (await self._store_estimates(store_id))[NEXT_ORDER]
        return max(1, round((ready - self._clock.now()).total_seconds() / 60))

    async def _store_estimates(self, store_id: str) -> dict[str, datetime]:
        cached = self._cache.get(store_id)
        if cached is not None and self._clock.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1]
        now = self._clock.now()
        store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
        delay = store.delay_minutes if store is not None else 0.0
        waiting = [OrderStatus.PLACED.value, OrderStatus.ACCEPTED.value, OrderStatus.PROCESSING.value]
        active = await Order.find({"store_id": store_id, "order_status": {"$in": waiting}}).to_list()
        finished = await Order.find({"store_id": store_id, "ready_at": {"$gte": now - LEARNING_WINDOW}}) \
            .sort("-ready_at").limit(HISTORY_SIZE).to_list()
        queue = [Active(str(o.id), o.accepted_at, o.created_at) for o in active]
        queue.append(Active(NEXT_ORDER, None, now))
        estimates = estimate(queue, learn(history(finished, active), now), now, delay)
        self._cache[store_id] = (self._clock.monotonic(), estimates)
        return estimates


def history(finished: list[Order], active: list[Order]) -> list[Finished]:
    """Finished orders, oldest first, each with how many of the store's orders were accepted and
    not yet ready when it was accepted (read off the same orders, no extra field)."""
    spans = [(o.accepted_at, o.ready_at) for o in finished if o.accepted_at and o.ready_at]
    spans += [(o.accepted_at, None) for o in active if o.accepted_at]
    out = []
    for accepted_at, ready_at in sorted(spans, key=lambda span: span[0]):
        if ready_at is None:
            continue
        ahead = sum(1 for other_at, other_ready in spans
                    if other_at < accepted_at and (other_ready is None or other_ready > accepted_at))
        out.append(Finished(accepted_at, ready_at, ahead))
    return sorted(out, key=lambda item: item.ready_at)
