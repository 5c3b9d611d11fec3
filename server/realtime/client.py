"""One subscriber's life: what it watches, its bounded outgoing queue, and its writer.

A subscriber is a WebSocket or an SSE stream; the transport supplies how a frame goes out.
Events for one order are coalesced in the queue (each event is a full state, so only the
newest matters), versions never go backwards, and a full queue of distinct orders is dropped
and replaced by a fresh snapshot once the subscriber catches up.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Set as AbstractSet
from typing import Any, Protocol

from server import metrics
from server.domain.access import Principal, sees_kitchen_view
from server.realtime.events import OrderChange

Frame = str
_control_keys = itertools.count()


NOTHING: frozenset[str] = frozenset()
"""What a subscriber watches of a kind it has never watched."""
_WATCHED = {"order": "order_ids", "store": "store_ids", "customer": "customer_ids"}

SnapshotRender = Callable[[list[dict[str, Any]], Any], Frame]
"""Renders a snapshot's entries (and the id of the frame that asked for it) for the transport."""


class DirectWrites(Protocol):
    """A connection events can be written to without a queue or a task (the session's socket)."""

    def try_write(self, frame: bytes) -> bool:
        """Write one whole serialised frame if the connection takes it now: True, or False
        with nothing written (the event then queues)."""


class Subscriber:
    # One per open socket or stream, idle for hours: no instance dictionary.
    # What `offer` reads for every subscriber of a fan-out comes first: slots are laid out in this
    # order, so those fields share the object's first cache lines (thousands of subscribers per
    # event, scattered over the heap, are read once each).
    __slots__ = ("closed", "_held", "sent_versions", "direct", "_queue", "sending_since", "sees_kitchen",
                 "principal", "order_ids", "store_ids", "customer_ids", "_render", "_render_snapshot",
                 "_queue_size", "_ready", "on_ready", "needs_snapshot", "abort", "reconnect", "render_estimates",
                 "admitted")

    def __init__(self, principal: Principal, queue_size: int,
                 render: Callable[[OrderChange, bool], Frame], render_snapshot: SnapshotRender) -> None:
        self.principal = principal
        self.sees_kitchen = sees_kitchen_view(principal)
        # What it watches, by kind: an empty set costs 216 bytes, and most sockets watch orders
        # only, so each starts as the one shared empty frozenset (`watched` makes a set to add to).
        self.order_ids: AbstractSet[str] = NOTHING
        self.store_ids: AbstractSet[str] = NOTHING
        self.customer_ids: AbstractSet[str] = NOTHING  # only ever the caller's own id ("My orders")
        self.sent_versions: dict[str, int] = {}
        self._render = render
        self._render_snapshot = render_snapshot
        # Made when something must wait to be sent, and let go once sent: an idle socket has none.
        self._queue: OrderedDict[object, OrderChange | Frame] | None = None
        self._queue_size = queue_size
        # Created on first wait: most subscribers never wait (a socket's writer runs only while
        # its queue has frames), and every idle socket's bytes count.
        self._ready: asyncio.Event | None = None
        # Called when the queue gets something to send: a WebSocket starts its writer here.
        self.on_ready: Callable[[], None] | None = None
        self.needs_snapshot = False
        self.closed = False
        self.sending_since: float | None = None
        # While a subscribe reads its snapshot, events wait here so the snapshot goes out first.
        self._held: list[OrderChange] | None = None
        self.abort: Callable[[int], Coroutine[Any, Any, None]] | None = None
        # The transport's way to tell its client to come back after a delay in ms, then end (a drain).
        self.reconnect: Callable[[int], Awaitable[None]] | None = None
        # The connection, where events may be written to it straight from the fan-out.
        self.direct: DirectWrites | None = None
        # How this transport writes ready-time estimates; None: its clients do not read them.
        self.render_estimates: Callable[[str, list[dict[str, Any]]], Frame] | None = None
        # Counted against its account's open sockets and streams (the hub's `admit`).
        self.admitted = False

    def watched(self, kind: str) -> set[str]:
        """The keys of `kind` ("order", "store", "customer") this subscriber watches, as a set the
        hub adds to and discards from."""
        attribute = _WATCHED[kind]
        keys = getattr(self, attribute)
        if not isinstance(keys, set):
            keys = set(keys)
            setattr(self, attribute, keys)
        return keys

    # --- producer side (the hub) ---------------------------------------------------------------

    def offer(self, change: OrderChange) -> bool:
        """Queue (or write at once) one event; True when it will reach the subscriber."""
        if self.closed:
            return False
        if self._held is not None:
            self._held.append(change)
            return False
        order_id = change.order_id
        if self.sent_versions.get(order_id, 0) >= change.version:
            metrics.EVENTS_DROPPED.inc()
            return False
        # An idle subscriber whose connection can take bytes now gets the process's one copy of
        # the frame written straight away: no queue, no task switch. Anything else queues.
        direct = self.direct
        if (direct is not None and not self._queue and self.sending_since is None
                and direct.try_write(change.wire(self.sees_kitchen))):
            self.sent_versions[order_id] = change.version
            return True
        queue = self._queued()
        if order_id in queue:
            metrics.EVENTS_COALESCED.inc()
        elif len(queue) >= self._queue_size:
            # Nothing to coalesce with: drop, and send a fresh snapshot once the queue drains.
            metrics.EVENTS_DROPPED.inc()
            self.needs_snapshot = True
            return False
        self.sent_versions[order_id] = change.version
        queue[order_id] = change
        self._wake()
        return True

    def offer_estimates(self, store_id: str, estimates: list[dict[str, Any]]) -> None:
        """Queue the newest estimates of a store's orders; a newer batch replaces one still queued."""
        if self.closed or self.render_estimates is None or self._held is not None:
            return  # a snapshot being read carries no estimate; the next batch does
        self._queued()[("estimates", store_id)] = self.render_estimates(store_id, estimates)
        self._wake()

    def send_control(self, frame: Frame) -> None:
        if self.closed:
            return
        self._queued()[("control", next(_control_keys))] = frame
        self._wake()

    def _queued(self) -> OrderedDict[object, OrderChange | Frame]:
        if self._queue is None:
            self._queue = OrderedDict()
        return self._queue

    def _wake(self) -> None:
        if self._ready is not None:
            self._ready.set()
        if self.on_ready is not None:
            self.on_ready()

    def send_snapshot(self, entries: list[dict[str, Any]], frame_id: Any = None) -> None:
        """Queue a snapshot, then the events held while it was read: a newer event that arrived
        meanwhile must follow the snapshot, never precede it."""
        self.send_control(self._render_snapshot(entries, frame_id))
        self.release_events()

    def hold_events(self) -> None:
        if self._held is None:
            self._held = []

    def release_events(self, drop: set[str] | frozenset[str] = frozenset()) -> None:
        """Deliver the events held while a snapshot was read, but none of the orders in `drop`."""
        held, self._held = self._held, None
        delivered = sum(self.offer(change) for change in held or () if change.order_id not in drop)
        metrics.EVENTS_FANNED_OUT.inc(delivered)

    def accept_snapshot_version(self, order_id: str, version: int) -> bool:
        """Record a snapshot entry; False if the subscriber already has a newer state."""
        if self.sent_versions.get(order_id, 0) > version:
            return False
        self.sent_versions[order_id] = version
        return True

    # --- consumer side (the transport's writer) ------------------------------------------------

    async def next_frame(self, timeout: float | None = None) -> Frame | None:
        """The next frame to write, or None when `timeout` passes with nothing to send."""
        if self._ready is None:
            self._ready = asyncio.Event()
        while not self._queue:
            self._ready.clear()
            if self.closed:
                return None
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        return self.pop_frame()

    def pop_frame(self) -> Frame | None:
        """The next queued frame, or None when the queue is empty (or the subscriber closed)."""
        queue = self._queue
        if not queue:
            return None
        _, item = queue.popitem(last=False)
        if not queue:
            self._queue = None
        if isinstance(item, OrderChange):
            return self._render(item, self.sees_kitchen)
        return item

    @property
    def queue_empty(self) -> bool:
        return not self._queue

    def sending(self) -> None:
        self.sending_since = time.monotonic()

    def sent(self) -> None:
        self.sending_since = None

    def close(self) -> None:
        self.closed = True
        self._queue = None
        if self._ready is not None:
            self._ready.set()

    def forget(self) -> None:
        """Once detached: drop what it kept and its transport's callbacks, which point back at it
        (a session holds its subscriber). Without these cycles its memory is returned as soon as
        the connection ends, not at the collector's next full pass."""
        self.sent_versions = {}
        self._held = None
        self.abort = self.reconnect = self.on_ready = self.direct = self.render_estimates = None
