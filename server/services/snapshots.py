"""A per-process snapshot of recently polled orders, kept fresh by the event stream.

An unchanged order's poll-status is answered from here with no database read. An order is
cached only while this process listens to its broker channel (subscribed *before* the
database read, so no change can slip between the read and the subscription). When the broker
connection drops, everything is forgotten: nothing cached can then be more than one event
behind, which the broker delivers within milliseconds.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc, parse_iso
from server.models import Order
from server.services.bus import MessageBus
from server.services.changes import ChangeMessage, is_estimates, order_channel
from server.views import LEAN_FIELDS, lean_order


@dataclass(slots=True)
class OrderSnapshot:
    order_id: str
    version: int
    user_id: str
    store_id: str
    body: bytes  # the complete poll-status answer
    etag: str
    next_deadline_at: datetime | None
    terminal: bool
    changed: asyncio.Event = field(default_factory=asyncio.Event)


def poll_body(lean: dict[str, Any]) -> bytes:
    return orjson.dumps({"success": True, "data": lean})


class OrderSnapshotCache:
    def __init__(self, bus: MessageBus, max_entries: int = 50_000, clock: Clock = SYSTEM_CLOCK) -> None:
        self._bus = bus
        self._clock = clock
        self._max_entries = max_entries
        self._entries: OrderedDict[str, OrderSnapshot] = OrderedDict()
        self._tracked: dict[str, None] = {}  # insertion order: oldest first
        bus.on_connection_change(self._connection_changed)

    def get(self, order_id: str) -> OrderSnapshot | None:
        if not self._bus.connected:
            return None
        return self._entries.get(order_id)

    async def track(self, order_id: str) -> None:
        """Listen to the order's channel; call before reading the order from the database."""
        if order_id in self._tracked:
            return
        self._tracked[order_id] = None
        try:
            await self._bus.subscribe(order_channel(order_id), self._on_event)
        except Exception:
            self._tracked.pop(order_id, None)
            raise
        while len(self._tracked) > self._max_entries:
            await self.forget(next(iter(self._tracked)))

    def store(self, order: Order) -> OrderSnapshot | None:
        """Keep a freshly read order, unless an event already brought a newer version."""
        order_id = str(order.id)
        if order_id not in self._tracked or not self._bus.connected:
            return None
        current = self._entries.get(order_id)
        if current is not None and current.version >= order.version:
            return current
        deadline = as_utc(order.next_deadline_at) if order.next_deadline_at else None
        return self._put(order_id, order.version, str(order.user_id), str(order.store_id),
                         lean_order(order), deadline)

    def _put(self, order_id: str, version: int, user_id: str, store_id: str, lean: dict[str, Any],
             deadline: datetime | None) -> OrderSnapshot:
        previous = self._entries.pop(order_id, None)
        snapshot = OrderSnapshot(
            order_id=order_id, version=version, user_id=user_id, store_id=store_id,
            body=poll_body(lean), etag=f'"{order_id}-{version}"', next_deadline_at=deadline,
            terminal=lean["orderStatus"] in ("picked_up", "cancelled"),
        )
        self._entries[order_id] = snapshot
        if previous is not None:
            previous.changed.set()
        return snapshot

    async def wait_for_change(self, snapshot: OrderSnapshot, timeout: float) -> None:
        await self._clock.sleep(timeout, snapshot.changed)

    def _on_event(self, channel: str, payload: bytes) -> None:
        if is_estimates(payload):
            return  # an estimate is not part of the poll answer
        change = ChangeMessage.decode(payload)
        current = self._entries.get(change.order_id)
        if current is not None and current.version >= change.version:
            return
        lean = {name: change.order[name] for name in LEAN_FIELDS}
        deadline = parse_iso(change.next_deadline_at) if change.next_deadline_at else None
        self._put(change.order_id, change.version, change.user_id, change.store_id, lean, deadline)

    async def forget(self, order_id: str) -> None:
        self._tracked.pop(order_id, None)
        snapshot = self._entries.pop(order_id, None)
        if snapshot is not None:
            snapshot.changed.set()
        await self._bus.unsubscribe(order_channel(order_id), self._on_event)

    def _connection_changed(self, connected: bool) -> None:
        for snapshot in self._entries.values():
            snapshot.changed.set()
        self._entries.clear()
