"""Publishing order changes, and the outbox relay that makes publishing survive crashes.

Every change is written with an `outbox_at` mark in the same atomic update. After the
broker accepted the event the mark is cleared. A process that dies in between leaves the mark,
and the relay of any live process republishes marked orders older than a second. Publishing
twice is harmless: subscribers keep the highest `version` per order.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import timedelta

from server import metrics
from server.domain.clock import utcnow
from server.models import Order
from server.realtime.broker import Broker
from server.realtime.events import encode_change, order_channel, store_channel

log = logging.getLogger("orderpulse.publishing")

FAILPOINT_AFTER_WRITE = "after_write_before_publish"


class ChangePublisher:
    def __init__(self, broker: Broker, failpoint: str | None = None) -> None:
        self._broker = broker
        self._failpoint = failpoint

    def written(self) -> None:
        """Called between the database write and the publish; the test-only failpoint lives here."""
        if self._failpoint == FAILPOINT_AFTER_WRITE:
            os.kill(os.getpid(), signal.SIGKILL)

    async def broadcast(self, order: Order, *, created: bool = False) -> bool:
        """Hand one change to the broker; False (mark kept for the relay) when the broker failed."""
        try:
            await self._broker.publish(
                [order_channel(str(order.id)), store_channel(str(order.store_id))],
                encode_change(order, "created" if created else "updated"),
            )
        except Exception:
            log.warning("publish of order %s v%s failed; the outbox relay will retry", order.id, order.version)
            return False
        metrics.EVENTS_PUBLISHED.inc()
        return True

    async def publish(self, order: Order, *, created: bool = False) -> None:
        """Publish one change and clear its outbox mark."""
        if not await self.broadcast(order, created=created):
            return
        await Order.get_pymongo_collection().update_one(
            {"_id": order.id, "version": order.version, "outbox_at": {"$exists": True}},
            {"$unset": {"outbox_at": ""}},
        )


class OutboxRelay:
    """Republishes changes whose writer died before publishing them."""

    def __init__(self, publisher: ChangePublisher, after_seconds: float) -> None:
        self._publisher = publisher
        self._after = timedelta(seconds=after_seconds)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def relay_once(self) -> int:
        cutoff = utcnow() - self._after
        stale = await Order.find({"outbox_at": {"$lte": cutoff}}).sort("outbox_at").limit(500).to_list()
        for order in stale:
            metrics.OUTBOX_REPUBLISHED.inc()
            await self._publisher.publish(order, created=order.version == 1)
        return len(stale)

    async def _run(self) -> None:
        interval = min(1.0, self._after.total_seconds())
        while True:
            await asyncio.sleep(interval / 2)
            try:
                await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox relay pass failed")
