"""Publishing order changes, and the outbox relay that makes publishing survive crashes.

Every change is written with an `outbox_at` mark in the same atomic update. After the
broker accepted the event the mark is cleared. A process that dies in between leaves the mark,
and the relay of any live process republishes marked orders older than a second. The deadline
enforcer's batches are recorded as a whole instead (`publish_deadline_batch`): a record older than
a second names a batch whose pass died, and the relay publishes it. Publishing twice is harmless:
subscribers keep the highest `version` per order.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any
from datetime import timedelta

from bson import ObjectId

from server import metrics
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.services.outage import MAYBE_OUTAGE, OutageLog
from server.models import Order
from server.models.base import stored_id
from server.services import order_store
from server.services.bus import MessageBus
from server.services.changes import customer_channel, encode_change, order_channel, store_channel

log = logging.getLogger("orderpulse.publishing")

CLEAR_INTERVAL_SECONDS = 0.1
STOP_SECONDS = 1.0
# Deadline batches (of up to 500 orders each) a relay pass publishes for passes that died.
STALE_BATCHES = 4
# A deadline batch recorded this long ago whose claim was never seen to end: its pass died during the
# claim (a claim of 500 orders takes well under a second; the driver gives up on it much sooner).
UNCLAIMED_BATCH_AFTER = timedelta(minutes=1)


class ChangePublisher:
    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus
        # Published changes whose marks are still set: cleared in bulk by the relay, off the
        # request path (order id → its store, the shard key, and the newest published version).
        self._published: dict[ObjectId, tuple[str, int]] = {}
        # Set when there are marks to clear, so an idle process does not wake to find none.
        self.marks_pending = asyncio.Event()
        # Told of every change this process hands to the bus (push notifications); each must return
        # at once and do its work elsewhere.
        self._watchers: list[Callable[[Order], None]] = []

    def watch(self, watcher: Callable[[Order], None]) -> None:
        self._watchers.append(watcher)

    async def broadcast(self, order: Order, *, created: bool = False) -> bool:
        """Hand one change to the bus; False (mark kept for the relay) when the bus failed."""
        for watcher in self._watchers:
            try:
                watcher(order)
            except Exception:
                log.exception("a change watcher failed on order %s", order.id)
        try:
            await self._bus.publish(
                [order_channel(str(order.id)), store_channel(str(order.store_id)),
                 customer_channel(str(order.user_id))],
                encode_change(order, "created" if created else "updated"),
            )
        except Exception:
            log.warning("publish of order %s v%s failed; the outbox relay will retry", order.id, order.version)
            return False
        metrics.EVENTS_PUBLISHED.inc()
        return True

    async def publish(self, order: Order, *, created: bool = False) -> None:
        """Publish one change; its outbox mark is cleared by the next `clear_published_marks`."""
        if await self.broadcast(order, created=created):
            order_id = stored_id(order)
            if self._published.get(order_id, ("", 0))[1] < order.version:
                self._published[order_id] = (order.store_id, order.version)
                self.marks_pending.set()

    async def clear_published_marks(self) -> int:
        """One bulk write for every change published since the last call."""
        if not self._published:
            return 0
        published, self._published = self._published, {}
        self.marks_pending.clear()
        # A mark of a newer, unpublished change (another version) is left for the relay.
        await order_store.clear_outbox_marks(published)
        return len(published)


async def publish_deadline_batch(publisher: ChangePublisher, batch: str, orders: Any = None) -> bool:
    """Publish the orders a deadline batch cancelled, one event each, then close its record; False
    (the record kept, for the relay's next pass) when the bus failed."""
    for order in await order_store.deadline_batch(batch, orders=orders):
        if not await publisher.broadcast(order):
            return False
    # Cancelled is terminal: nothing else can have changed these orders since.
    await order_store.close_deadline_batch(batch, orders=orders)
    return True


class OutboxRelay:
    """Republishes changes whose writer died before publishing them."""

    def __init__(self, publisher: ChangePublisher, after_seconds: float, clock: Clock = SYSTEM_CLOCK) -> None:
        self._publisher = publisher
        self._clock = clock
        self._after = timedelta(seconds=after_seconds)
        self._task: asyncio.Task[None] | None = None
        self._outage = OutageLog(log, "outbox relay pass")
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Cancel the loop and clear the last marks, each within `timeout`: a database that is
        gone must not hold a shutdown (its marks are then relayed once more, which is harmless)."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=timeout)
        try:
            await asyncio.wait_for(self._publisher.clear_published_marks(), timeout)
        except Exception:
            log.warning("could not clear the last outbox marks on shutdown")

    async def relay_once(self) -> int:
        cutoff = self._clock.now() - self._after
        # Marks of changes this process did publish are not stale: clear them before looking.
        await self._publisher.clear_published_marks()
        stale = await order_store.stale_outbox(cutoff, 500)
        for order in stale:
            metrics.OUTBOX_REPUBLISHED.inc()
            await self._publisher.publish(order, created=order.version == 1)
        await self._publisher.clear_published_marks()
        # Deadline batches whose pass died between its claim and its last event.
        unclaimed_cutoff = self._clock.now() - UNCLAIMED_BATCH_AFTER
        for batch in await order_store.stale_deadline_batches(cutoff, unclaimed_cutoff, STALE_BATCHES):
            log.warning("publishing deadline batch %s, left unpublished by its pass", batch)
            metrics.OUTBOX_REPUBLISHED.inc()
            await publish_deadline_batch(self._publisher, batch)
        return len(stale)

    async def _run(self) -> None:
        """Clear published marks at most every `CLEAR_INTERVAL_SECONDS` while changes come in,
        and look for stale marks once per relay interval; an idle process sleeps in between."""
        clock = self._clock
        interval = min(1.0, self._after.total_seconds())
        next_relay = clock.monotonic() + interval
        # Checked as well as cancelled: the loop ends even if a cancellation is swallowed below.
        while not self._stopping:
            await clock.sleep(max(0.0, next_relay - clock.monotonic()), self._publisher.marks_pending)
            if self._publisher.marks_pending.is_set():
                await asyncio.sleep(CLEAR_INTERVAL_SECONDS)  # gather a batch
            try:
                if clock.monotonic() >= next_relay:
                    next_relay = clock.monotonic() + interval
                    await self.relay_once()
                else:
                    await self._publisher.clear_published_marks()
                self._outage.succeeded()
            except asyncio.CancelledError:
                raise
            except MAYBE_OUTAGE as exc:
                self._outage.failed(exc, interval)
            except Exception:
                log.exception("outbox relay pass failed")
