"""Ready-time estimates of a store's active orders, from its live queue (server/domain/eta.py).

A store's estimates are computed from its queue: its active orders and its recently finished
ones, read from the database at most once per `CACHE_SECONDS` and kept current in between with
every change this process makes (the changes of other processes arrive with the next read). The
estimates are kept until one of the store's orders changes, so a busy tracking page or kitchen
costs no more than one computation per store and change, and a busy kitchen no more than one
read of its queue every `CACHE_SECONDS`: on the embedded engine, which serves one command at a
time, reading a queue of hundreds of orders after every change held every other request up.

When one of a store's orders changes, the process that changed it recomputes the store's
estimates `ETA_PUSH_SECONDS` later (changes in between share that one recomputation) and
publishes the ones that moved by `MOVED_SECONDS` or more to the channels of their orders, their
customers and their store, so a busy kitchen cannot flood sockets.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from bson import ObjectId

from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc, iso_z
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


WAITING = frozenset(ACTIVE - {OrderStatus.READY})  # the statuses an order has an estimate in


@dataclass
class StoreQueue:
    """A store's queue as last read, kept current with this process's changes since."""

    read_at: float  # monotonic
    delay_minutes: float
    active: dict[str, dict[str, Any]]  # order id → what `order_store.queue` reads of it
    finished: dict[str, tuple[datetime, datetime]]  # order id → (accepted, ready), ready in the window
    versions: dict[str, int] = field(default_factory=dict)  # order id → version of what is held

    def apply(self, order: Order) -> None:
        """Move `order` to where its change puts it; a change older than what is held is ignored
        (the outbox relay may hand over a version read before the queue was)."""
        order_id = str(order.id)
        if order.version <= self.versions.get(order_id, -1):
            return
        self.versions[order_id] = order.version
        if order.order_status in WAITING:
            self.active[order_id] = order_store.queue_row(order)
            self.finished.pop(order_id, None)  # a ready undone
            return
        self.active.pop(order_id, None)
        if order.accepted_at and order.ready_at:
            self.finished[order_id] = (as_utc(order.accepted_at), as_utc(order.ready_at))


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
        self._queues: dict[str, StoreQueue] = {}
        # One read of a store's queue at a time; the changes made while it is on its way are
        # applied to what it returns.
        self._reads: dict[str, asyncio.Task[StoreQueue]] = {}
        self._changed_while_read: dict[str, list[Order]] = {}
        self._store_changed_while_read: set[str] = set()  # those reads answer once and are not kept

    def order_changed(self, order: Order) -> None:
        """A change to one of a store's orders moves its queue: move it in the queue held, forget
        that store's estimates, and push the ones that moved once the burst of changes is over."""
        store_id = str(order.store_id)
        queue = self._queues.get(store_id)
        if queue is not None:
            queue.apply(order)
        if store_id in self._changed_while_read:
            self._changed_while_read[store_id].append(order)
        self._estimates_moved(store_id)

    def store_changed(self, store_id: str) -> None:
        """The store itself changed (its pace, its cap): read its queue afresh next time."""
        self._queues.pop(store_id, None)
        if store_id in self._changed_while_read:
            self._store_changed_while_read.add(store_id)
        self._estimates_moved(store_id)

    def _estimates_moved(self, store_id: str) -> None:
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
        if order.order_status not in WAITING:
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
        held = await self._queue(store_id)
        now = self._clock.now()
        active = list(held.active.values())
        queue = [Active(str(row["_id"]), row.get("accepted_at"), row["created_at"]) for row in active]
        queue.append(Active(NEXT_ORDER, None, now))
        kitchen = learn(history(held, now), now)
        self._kitchens[store_id] = kitchen
        estimates = estimate(queue, kitchen, now, held.delay_minutes)
        for row in active:
            # An order sent to a later slot by the store's cap is promised by that slot's end.
            if row.get("slot_deferred") and row.get("slot_start") is not None:
                estimates[str(row["_id"])] = max(estimates[str(row["_id"])], deferred_ready_around(row["slot_start"]))
        owners = {str(row["_id"]): str(row["user_id"]) for row in active}
        if self._generation.get(store_id, 0) == generation:
            self._cache[store_id] = (self._clock.monotonic(), estimates, owners)
        return estimates, owners


    async def _queue(self, store_id: str) -> StoreQueue:
        """The store's queue: the one held while it is fresh, else read (one read at a time)."""
        held = self._queues.get(store_id)
        if held is not None and self._clock.monotonic() - held.read_at < CACHE_SECONDS:
            return held
        reading = self._reads.get(store_id)
        if reading is None:
            reading = self._reads[store_id] = asyncio.ensure_future(self._read_queue(store_id))
        return await asyncio.shield(reading)

    async def _read_queue(self, store_id: str) -> StoreQueue:
        self._changed_while_read[store_id] = []
        try:
            now = self._clock.now()
            read_at = self._clock.monotonic()
            store = await Store.get(store_id) if ObjectId.is_valid(store_id) else None
            active = await order_store.queue(store_id, [status.value for status in WAITING])
            finished = await order_store.recently_ready(store_id, now - LEARNING_WINDOW, HISTORY_SIZE)
            held = StoreQueue(
                read_at, store.delay_minutes if store is not None else 0.0,
                {str(row["_id"]): row for row in active},
                {str(row["_id"]): (row["accepted_at"], row["ready_at"]) for row in finished if row.get("accepted_at")},
                {str(row["_id"]): int(row.get("version", 0)) for row in [*active, *finished]})
            for order in self._changed_while_read[store_id]:
                held.apply(order)
            # Queues not asked for since they went stale are dropped, so quiet stores hold nothing.
            for stale in [key for key, queue in self._queues.items() if read_at - queue.read_at >= CACHE_SECONDS]:
                del self._queues[stale]
            if store_id not in self._store_changed_while_read:
                self._queues[store_id] = held
            return held
        finally:
            del self._changed_while_read[store_id]
            self._store_changed_while_read.discard(store_id)
            self._reads.pop(store_id, None)


def history(queue: StoreQueue, now: datetime) -> list[Finished]:
    """The store's finished orders as the estimator learns from them, its last `HISTORY_SIZE` in
    the window (how many were ahead of each is read off the same orders: no extra field)."""
    since = now - LEARNING_WINDOW
    finished = sorted((span for span in queue.finished.values() if span[1] >= since),
                      key=lambda span: span[1])[-HISTORY_SIZE:]
    spans: list[tuple[datetime, datetime | None]] = [
        *finished, *((row["accepted_at"], None) for row in queue.active.values() if row.get("accepted_at"))]
    return finished_from_spans(spans)
