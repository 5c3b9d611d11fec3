"""Ready-time estimates of a store's active orders, from its live queue (server/domain/eta.py).

A store's estimates are computed from two reads (its active orders, its recently finished ones)
and kept until one of its orders changes or `CACHE_SECONDS` pass, so a busy tracking page or
kitchen costs no more than one computation per store and change.

When one of a store's orders changes, the process that changed it recomputes the store's
estimates `ETA_PUSH_SECONDS` later (changes in between share that one recomputation) and
publishes the ones that moved by `MOVED_SECONDS` or more to the channels of their orders, their
customers and their store, so a busy kitchen cannot flood sockets.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any, Protocol

from bson import ObjectId

from server.domain.clock import SYSTEM_CLOCK, Clock, iso_z
from server.domain.eta import HISTORY_SIZE, Active, Finished, Kitchen, estimate, finished_from_spans, learn
from server.domain.slots import deferred_ready_around
from server.domain.lifecycle import ACTIVE, OrderStatus
from server.models import Order, Store
from server.services import order_store
from server.services.bus import MessageBus
from server.services.changes import customer_channel, encode_estimates, order_channel, store_channel

log = logging.getLogger("orderpulse.ready_times")

CACHE_SECONDS = 15.0
# Only orders finished in this window teach the kitchen's pace: yesterday's lunch is history.
LEARNING_WINDOW = timedelta(days=7)
# The virtual order asked about for "about N min wait now" on the menu page.
NEXT_ORDER = "next"
MOVED_SECONDS = 30  # an estimate that moved less is not worth a frame


class EstimatedOrder(Protocol):
    """What an estimate is looked up by: an `Order`, or the hub's key of one (subscriptions.py)."""

    @property
    def id(self) -> ObjectId | str | None: ...

    @property
    def store_id(self) -> str: ...

    @property
    def order_status(self) -> OrderStatus: ...


class ReadyTimes:
    def __init__(self, clock: Clock = SYSTEM_CLOCK, bus: MessageBus | None = None, push_seconds: float = 5.0) -> None:
        self._clock = clock
        self._bus = bus
        self._push_seconds = push_seconds
        self._cache: dict[str, tuple[float, dict[str, datetime], dict[str, str]]] = {}
        self._published: dict[str, dict[str, datetime]] = {}  # store → order → estimate last sent
        self._pushes: dict[str, asyncio.Task[None]] = {}
        # Bumped by every change of a store: a computation that read the queue before a change
        # must not be cached after it.
        self._generation: dict[str, int] = {}
        self._kitchens: dict[str, Kitchen] = {}  # store → its pace as last learned

    def order_changed(self, order: Order) -> None:
        """A change to one of a store's orders moves its queue: forget that store's estimates,
        and push the ones that moved once the burst of changes is over."""
        self.store_changed(str(order.store_id))

    def store_changed(self, store_id: str) -> None:
        self._cache.pop(store_id, None)
        self._generation[store_id] = self._generation.get(store_id, 0) + 1
        if self._bus is not None and store_id not in self._pushes:
            self._pushes[store_id] = asyncio.create_task(self._push_later(store_id), name=f"eta-{store_id}")

    async def stop(self) -> None:
        tasks = list(self._pushes.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._pushes.clear()

    async def _push_later(self, store_id: str) -> None:
        try:
            await self._clock.sleep(self._push_seconds)
            self._pushes.pop(store_id, None)
            await self.push(store_id)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database or the broker is away: the next change pushes again
            log.warning("ready-time estimates of store %s were not pushed", store_id)
        finally:
            if self._pushes.get(store_id) is asyncio.current_task():
                del self._pushes[store_id]

    async def push(self, store_id: str) -> int:
        """Publish the store's estimates that moved since last published; returns how many."""
        assert self._bus is not None
        estimates, owners = await self._store_estimates(store_id)
        sent = self._published.setdefault(store_id, {})
        moved: list[dict[str, Any]] = []
        for order_id, ready in estimates.items():
            if order_id == NEXT_ORDER:
                continue
            before = sent.get(order_id)
            if before is None or abs((ready - before).total_seconds()) >= MOVED_SECONDS:
                moved.append({"id": order_id, "estimatedReadyAt": iso_z(ready)})
                sent[order_id] = ready
        for gone in set(sent) - set(estimates):
            del sent[gone]
        if not moved:
            return 0
        await self._bus.publish([store_channel(store_id)], encode_estimates(store_id, moved))
        for entry in moved:
            await self._bus.publish([order_channel(entry["id"]), customer_channel(owners[entry["id"]])],
                                    encode_estimates(store_id, [entry]))
        return len(moved)

    async def for_order(self, order: EstimatedOrder) -> datetime | None:
        """When this active order should be ready; None once it is ready or over."""
        if order.order_status not in ACTIVE or order.order_status == OrderStatus.READY:
            return None
        return (await self._store_estimates(str(order.store_id)))[0].get(str(order.id))

    async def wait_minutes(self, store_id: str) -> int:
        """About how long a new order placed now would take, in whole minutes."""
        ready = (await self._store_estimates(store_id))[0][NEXT_ORDER]
        return max(1, round((ready - self._clock.now()).total_seconds() / 60))

    async def typical_minutes(self, store_id: str) -> float:
        """The store's typical accepted → ready time, learned from its recent orders (the
        estimator's default until it has enough of them): what the kitchen's colour timers measure."""
        await self._store_estimates(store_id)
        return round(self._kitchens[store_id].prep_minutes, 1)

    async def _store_estimates(self, store_id: str) -> tuple[dict[str, datetime], dict[str, str]]:
        """The store's estimates (and who owns each order), from the cache when it is fresh."""
        cached = self._cache.get(store_id)
        if cached is not None and self._clock.monotonic() - cached[0] < CACHE_SECONDS:
            return cached[1], cached[2]
        generation = self._generation.get(store_id, 0)
        now = self._clock.now()
        store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
        delay = store.delay_minutes if store is not None else 0.0
        waiting = [OrderStatus.PLACED.value, OrderStatus.ACCEPTED.value, OrderStatus.PROCESSING.value]
        active = await order_store.queue(store_id, waiting)
        finished = await order_store.recently_ready(store_id, now - LEARNING_WINDOW, HISTORY_SIZE)
        queue = [Active(str(row["_id"]), row.get("accepted_at"), row["created_at"]) for row in active]
        queue.append(Active(NEXT_ORDER, None, now))
        kitchen = learn(history(finished, active), now)
        self._kitchens[store_id] = kitchen
        estimates = estimate(queue, kitchen, now, delay)
        for row in active:
            # An order sent to a later slot by the store's cap is promised by that slot's end.
            if row.get("slot_deferred") and row.get("slot_start") is not None:
                estimates[str(row["_id"])] = max(estimates[str(row["_id"])], deferred_ready_around(row["slot_start"]))
        owners = {str(row["_id"]): str(row["user_id"]) for row in active}
        if self._generation.get(store_id, 0) == generation:
            self._cache[store_id] = (self._clock.monotonic(), estimates, owners)
        return estimates, owners


def history(finished: list[Order], active: list[dict[str, Any]]) -> list[Finished]:
    """The store's finished orders as the estimator learns from them (how many were ahead of each
    is read off the same orders: no extra field); `active` as `order_store.queue` reads them."""
    spans = [(o.accepted_at, o.ready_at) for o in finished if o.accepted_at and o.ready_at]
    return finished_from_spans(spans + [(row["accepted_at"], None) for row in active if row.get("accepted_at")])
