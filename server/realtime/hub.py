"""This process's subscribers and who watches what.

The hub listens to the broker only for channels its subscribers watch (reference-counted by
the broker), decodes each event once, and hands it to every watcher's queue: no task, no JSON
encoding and no database read per subscriber per event. What a caller may watch, and the
snapshots it starts from, come from the subscription service; the newest state of each order
watched by id is held here, so another subscribe of it reads nothing. Each account's sockets,
streams and subscribes are budgeted here too (REALTIME.md, "Budgets per account").
"""

from __future__ import annotations

import asyncio
import logging
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson

from server import metrics
from server.config import Settings
from server.domain import messages
from server.domain.access import may_run_store, may_see_order
from server.domain.clock import iso_z
from server.domain.errors import Forbidden, OrderPulseError, RateLimited
from server.domain.token_bucket import TokenBuckets
from server.realtime.broker import Broker
from server.realtime.catalog_feed import CatalogFeed
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange
from server.realtime.frames import CLOSE_UNAUTHORISED
from server.realtime.latest import SharedListens
from server.realtime.trim import Trimmer
from server.services.changes import customer_channel, is_estimates, order_channel, store_channel
from server.services.subscriptions import SubscriptionService
from server.views import event_order, kitchen_fields

if TYPE_CHECKING:
    from server.models import Order

log = logging.getLogger("orderpulse.hub")

MAX_ORDERS_PER_SUBSCRIBER = 1000
CLOSE_STALLED = 1013  # "try again later": stuck on one write for the stall limit


class _ReadAbandoned(Exception):
    """The subscribe reading some orders for others too was cancelled before its read ended."""


def as_change(order: Order) -> OrderChange:
    """A freshly read order in the shape an event carries, so the hub holds one kind of state.
    Its id is interned: every set and dict of every subscriber then shares the one string."""
    view = event_order(order)
    view["id"] = sys.intern(view["id"])
    return OrderChange(event="updated", order=view, kitchen=kitchen_fields(order), user_id=str(order.user_id),
                       next_deadline_at=iso_z(order.next_deadline_at))


def snapshot_entry(change: OrderChange, sees_kitchen: bool) -> dict[str, Any]:
    return {**change.order, **change.kitchen} if sees_kitchen else dict(change.order)


class Hub:
    def __init__(self, settings: Settings, broker: Broker, subscriptions: SubscriptionService) -> None:
        self._settings = settings
        self._broker = broker
        self._subscriptions = subscriptions
        self.clock = subscriptions.clock
        self.subscribers: set[Subscriber] = set()
        self._order_watchers: dict[str, set[Subscriber]] = defaultdict(set)
        self._store_watchers: dict[str, set[Subscriber]] = defaultdict(set)
        # "My orders": subscribers by the customer whose orders they watch (their own).
        self._customer_watchers: dict[str, set[Subscriber]] = defaultdict(set)
        # The newest state of every order watched by id in this process, kept by its events: a
        # subscribe of an order held here reads nothing. Only orders whose channel was listened to
        # before their state was read are held (`_listening`), and all is forgotten when the
        # broker connection drops, so nothing held can miss a change.
        self._latest: dict[str, OrderChange] = {}
        self._listening: set[str] = set()
        self._reading: dict[str, asyncio.Future[dict[str, OrderChange]]] = {}
        # The channels the broker listens to for this hub, once for all their watchers.
        self._listens = SharedListens()
        # Per account: open sockets and event streams, and subscribes that read the database.
        self._open: dict[str, int] = {}
        self._subscribe_reads = TokenBuckets(settings.ws_subscribe_reads_per_second,
                                             settings.ws_subscribe_reads_burst)
        self._subscribes = TokenBuckets(settings.ws_subscribes_per_second, settings.ws_subscribes_burst)
        self._trimmer = Trimmer()
        self.catalog = CatalogFeed(broker, subscriptions.menu)
        self._watchdog: asyncio.Task[None] | None = None
        self._resync: asyncio.Task[None] | None = None
        self._recheck: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Task[None]] = set()
        broker.on_connection_change(self._connection_changed)

    async def start(self) -> None:
        self._watchdog = asyncio.create_task(self._watch_stalls(), name="hub-watchdog")

    async def stop(self) -> None:
        tasks = [t for t in (self._watchdog, self._resync, self._recheck) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.catalog.stop()
        for subscriber in list(self.subscribers):
            if subscriber.abort:
                await subscriber.abort(1001)

    async def drain(self, window_seconds: float) -> None:
        """Tell every socket and event stream to reconnect, each after its own delay spread evenly
        over `window_seconds` (one slot each, jittered within it, in random order), so a stopping
        process's clients come back spread over the window rather than all at once."""
        subscribers = [s for s in self.subscribers if s.reconnect is not None]
        random.shuffle(subscribers)
        count = len(subscribers)
        window_ms = window_seconds * 1000
        await asyncio.gather(*(subscriber.reconnect(int(window_ms * (slot + random.random()) / count))
                               for slot, subscriber in enumerate(subscribers) if subscriber.reconnect is not None),
                             return_exceptions=True)

    # --- membership ------------------------------------------------------------------------

    def attach(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)

    def admit(self, subscriber: Subscriber) -> None:
        """Count a new socket or event stream against its account's limit (`detach` gives it
        back); RateLimited past it. Counted per process (README, Configuration)."""
        principal = subscriber.principal
        maximum = (self._settings.ws_max_sockets_per_account if principal.is_customer
                   else self._settings.ws_max_sockets_per_staff_account)
        held = self._open.get(principal.user_id, 0)
        if held >= maximum:
            metrics.BUDGET_REFUSALS.labels("streams").inc()
            raise RateLimited(messages.WATCH_TOO_MANY_STREAMS.format(maximum=maximum), retry_after=1)
        self._open[principal.user_id] = held + 1
        subscriber.admitted = True

    def _take(self, subscriber: Subscriber, reads: bool = False) -> None:
        """A token of its account for a subscribe (and, when it is about to read the database, one
        for that too), or refused before anything is read or rendered."""
        now = self.clock.monotonic()
        user_id = subscriber.principal.user_id
        if self._subscribes.take(user_id, now) is not None:
            metrics.BUDGET_REFUSALS.labels("subscribes").inc()
            raise RateLimited(messages.WATCH_SUBSCRIBES_TOO_FAST, retry_after=1)
        if reads and self._subscribe_reads.take(user_id, now) is not None:
            metrics.BUDGET_REFUSALS.labels("reads").inc()
            raise RateLimited(messages.WATCH_SUBSCRIBES_TOO_FAST, retry_after=1)

    async def detach(self, subscriber: Subscriber) -> None:
        subscriber.close()
        self.subscribers.discard(subscriber)
        if subscriber.admitted:
            subscriber.admitted = False
            user_id = subscriber.principal.user_id
            left = self._open.get(user_id, 1) - 1
            if left > 0:
                self._open[user_id] = left
            else:
                self._open.pop(user_id, None)
        self._trimmer.released(len(subscriber.order_ids) + len(subscriber.sent_versions))
        for order_id in list(subscriber.order_ids):
            await self._unwatch(subscriber, "order", order_id)
        for store_id in list(subscriber.store_ids):
            await self._unwatch(subscriber, "store", store_id)
        for user_id in list(subscriber.customer_ids):
            await self._unwatch(subscriber, "customer", user_id)
        subscriber.forget()

    async def subscribe_orders(self, subscriber: Subscriber, order_ids: list[str]) -> list[dict[str, Any]]:
        """Watch orders the caller may see; returns the snapshot entries. Refuses the whole frame
        if any id is not the caller's, without saying whether it exists.

        Orders this process holds are checked and answered from memory; the others are listened
        to first and then read once, so no change can fall between the read and the subscription.
        Events stay held until the caller queues the snapshot with `subscriber.send_snapshot`
        (or gives up on it with `release_events`), so the snapshot always goes out first."""
        if len(subscriber.order_ids | set(order_ids)) > MAX_ORDERS_PER_SUBSCRIBER:
            raise RateLimited(messages.WATCH_TOO_MANY_ORDERS.format(maximum=MAX_ORDERS_PER_SUBSCRIBER), retry_after=1)
        principal = subscriber.principal
        order_ids = [sys.intern(order_id) for order_id in order_ids]
        held = {oid: change for oid in order_ids if (change := self._latest.get(oid)) is not None}
        if any(not may_see_order(principal, change.user_id, change.store_id) for change in held.values()):
            raise Forbidden(messages.WATCH_ORDER_FORBIDDEN)
        missing = [oid for oid in order_ids if oid not in held]
        # Orders another subscribe is reading right now are taken from that read.
        joining = {oid: self._reading[oid] for oid in missing if oid in self._reading}
        to_read = [oid for oid in missing if oid not in joining]
        self._take(subscriber, reads=bool(to_read))
        metrics.SNAPSHOT_ORDERS.labels("memory").inc(len(held) + len(joining))
        metrics.SNAPSHOT_ORDERS.labels("database").inc(len(to_read))
        newly = [oid for oid in order_ids if oid not in subscriber.order_ids]
        # Announced before anything is awaited, so subscribes arriving meanwhile join this read.
        reading = self._announce_read(to_read) if to_read else None
        subscriber.hold_events()
        try:
            # Held orders first: their channels are listened to already, so nothing is awaited and
            # their held state cannot be dropped before this subscriber watches them too.
            for order_id in sorted(newly, key=lambda oid: oid not in held):
                await self._watch(subscriber, "order", order_id)
            if missing:
                read = await self._read_orders(to_read, reading, joining)
                owners = {order_id: (change.user_id, change.store_id) for order_id, change in read.items()}
                try:
                    self._subscriptions.check_orders(principal, missing, owners)
                except OrderPulseError:
                    # Nothing of an order the caller may not see reaches them, not even held events.
                    foreign = {oid for oid in missing if oid not in owners
                               or not may_see_order(principal, *owners[oid])}
                    for order_id in newly:
                        await self._unwatch(subscriber, "order", order_id)
                    # Held events of the frame's orders go too, unless another watch may bring them.
                    subscriber.release_events(
                        drop=foreign if subscriber.store_ids or subscriber.customer_ids else set(newly))
                    raise
                held.update(read)
            return await self._snapshot_entries(subscriber, [held[oid] for oid in order_ids if oid in held])
        except OrderPulseError:
            raise
        except BaseException:
            subscriber.release_events()
            raise
        finally:
            self._end_read(to_read, reading)

    async def subscribe_store(self, subscriber: Subscriber, store_id: str) -> list[dict[str, Any]]:
        if not may_run_store(subscriber.principal, store_id):  # refused before it costs a read
            raise Forbidden(messages.WATCH_STORE_FORBIDDEN)
        self._take(subscriber, reads=True)
        await self._subscriptions.check_store(subscriber.principal, store_id)
        subscriber.hold_events()
        try:
            await self._watch(subscriber, "store", store_id)
            board = await self._subscriptions.store_board(store_id)
            return await self._snapshot_entries(subscriber, [as_change(order) for order in board])
        except BaseException:
            subscriber.release_events()
            raise

    async def subscribe_mine(self, subscriber: Subscriber) -> list[dict[str, Any]]:
        """Watch the caller's own orders, those placed later included (from any page or partner
        app); returns their active and recently finished orders. Nobody else's can be named."""
        user_id = subscriber.principal.user_id
        self._take(subscriber, reads=True)
        subscriber.hold_events()
        try:
            await self._watch(subscriber, "customer", user_id)
            mine = await self._subscriptions.customer_orders(user_id)
            return await self._snapshot_entries(subscriber, [as_change(order) for order in mine])
        except BaseException:
            subscriber.release_events()
            raise

    async def unsubscribe_mine(self, subscriber: Subscriber) -> None:
        await self._unwatch(subscriber, "customer", subscriber.principal.user_id)

    async def unsubscribe_orders(self, subscriber: Subscriber, order_ids: list[str]) -> None:
        for order_id in order_ids:
            await self._unwatch(subscriber, "order", order_id)

    async def unsubscribe_store(self, subscriber: Subscriber, store_id: str) -> None:
        await self._unwatch(subscriber, "store", store_id)

    async def _snapshot_entries(self, subscriber: Subscriber, changes: list[OrderChange]) -> list[dict[str, Any]]:
        """The snapshot's orders in the event shape, each with its ready-time estimate (or null)."""
        estimates = await self._subscriptions.estimates(
            [(c.order_id, c.store_id, c.order["orderStatus"]) for c in changes])
        entries = []
        for change in changes:
            if subscriber.accept_snapshot_version(change.order_id, change.version):
                entry = snapshot_entry(change, subscriber.sees_kitchen)
                entry["estimatedReadyAt"] = iso_z(estimates.get(change.order_id))
                entries.append(entry)
        return entries

    def _announce_read(self, to_read: list[str]) -> asyncio.Future[dict[str, OrderChange]]:
        reading: asyncio.Future[dict[str, OrderChange]] = asyncio.get_running_loop().create_future()
        reading.add_done_callback(lambda done: done.cancelled() or done.exception())  # always retrieved
        for order_id in to_read:
            self._reading[order_id] = reading
        return reading

    def _end_read(self, to_read: list[str], reading: asyncio.Future[dict[str, OrderChange]] | None) -> None:
        if reading is None:
            return
        if not reading.done():  # the subscribe ended before its read: its joiners read for themselves
            reading.set_exception(_ReadAbandoned())
        for order_id in to_read:
            if self._reading.get(order_id) is reading:
                del self._reading[order_id]

    async def _read_orders(self, to_read: list[str], reading: asyncio.Future[dict[str, OrderChange]] | None,
                           joining: dict[str, asyncio.Future[dict[str, OrderChange]]]) -> dict[str, OrderChange]:
        """The orders of `to_read`, read once (and held where their channels were listened to
        before the read), and those of `joining` from the reads already under way for them; each
        the newest state the hub knows of it. An order that does not exist is absent."""
        found: dict[str, OrderChange] = {}
        if to_read and reading is not None:
            listening = {oid for oid in to_read if oid in self._listening}
            try:
                changes = {c.order_id: c for c in map(as_change, await self._subscriptions.orders(to_read))}
            except Exception as error:
                reading.set_exception(error)  # its joiners fail with it
                raise
            for order_id, change in changes.items():
                changes[order_id] = self._hold(change) if order_id in listening else self._newest(change)
            reading.set_result(changes)
            found.update(changes)
        for under_way in set(joining.values()):
            ids = [oid for oid, future in joining.items() if future is under_way]
            try:
                changes = await asyncio.shield(under_way)
            except _ReadAbandoned:
                changes = {c.order_id: c for c in map(as_change, await self._subscriptions.orders(ids))}
            for order_id in ids:
                read = changes.get(order_id)
                if read is not None:
                    found[order_id] = self._newest(read)
        return found

    def _newest(self, change: OrderChange) -> OrderChange:
        """`change`, or the state an event brought meanwhile when that one is newer."""
        latest = self._latest.get(change.order_id)
        return latest if latest is not None and latest.version >= change.version else change

    def _hold(self, change: OrderChange) -> OrderChange:
        """Keep a freshly read state of an order watched by id, unless an event brought a newer one."""
        current = self._newest(change)
        if current is not change:
            return current
        if change.order_id in self._order_watchers:
            self._latest[change.order_id] = change
        return change

    def _kind(self, subscriber: Subscriber, kind: str) -> tuple[set[str], dict[str, set[Subscriber]], Callable[[str], str]]:
        """What a subscriber watches of one kind, who watches each key, and the key's channel."""
        mine = subscriber.watched(kind)
        if kind == "order":
            return mine, self._order_watchers, order_channel
        if kind == "customer":
            return mine, self._customer_watchers, customer_channel
        return mine, self._store_watchers, store_channel

    async def _watch(self, subscriber: Subscriber, kind: str, key: str) -> None:
        mine, watchers_of, channel = self._kind(subscriber, kind)
        if key in mine:
            return
        mine.add(key)
        watchers_of[key].add(subscriber)
        metrics.SUBSCRIPTIONS.labels(kind).inc()
        name = channel(key)
        try:
            await self._listens.ensure(name, lambda: self._broker.subscribe(name, self._on_message))
        except BaseException:
            await self._unwatch(subscriber, kind, key)
            raise
        if kind == "order" and key in watchers_of and self._broker.connected:
            self._listening.add(key)

    async def _unwatch(self, subscriber: Subscriber, kind: str, key: str) -> None:
        mine, watchers_of, channel = self._kind(subscriber, kind)
        if key not in mine:
            return
        mine.discard(key)
        if kind == "order" and not subscriber.store_ids and not subscriber.customer_ids:
            # No other watch can bring this order again: its version need not be kept.
            subscriber.sent_versions.pop(key, None)
        metrics.SUBSCRIPTIONS.labels(kind).dec()
        watchers = watchers_of.get(key)
        if watchers is not None:
            watchers.discard(subscriber)
            if not watchers:
                del watchers_of[key]
                if kind == "order":
                    self._latest.pop(key, None)
                    self._listening.discard(key)
                self._listens.forget(channel(key))
                await self._broker.unsubscribe(channel(key), self._on_message)

    # --- fan-out ---------------------------------------------------------------------------

    def _on_message(self, channel: str, payload: bytes) -> None:
        started = time.perf_counter()
        kind, _, key = channel.partition(":")
        watchers = (self._order_watchers if kind == "order" else self._customer_watchers if kind == "customer"
                    else self._store_watchers).get(key)
        if not watchers:
            return
        if is_estimates(payload):
            estimates = orjson.loads(payload)
            for subscriber in tuple(watchers):
                subscriber.offer_estimates(estimates["storeId"], estimates["estimates"])
            return
        change = OrderChange.decode(payload)
        if kind == "order":
            current = self._latest.get(key)
            if current is None or current.version < change.version:
                change.order["id"] = change.order_id = sys.intern(change.order_id)
                self._latest[change.order_id] = change
        delivered = 0
        for subscriber in tuple(watchers):  # a plain loop: no generator to resume per subscriber
            if subscriber.offer(change):
                delivered += 1
        metrics.EVENTS_FANNED_OUT.inc(delivered)
        metrics.FANOUT_SECONDS.observe(time.perf_counter() - started)

    # --- accounts --------------------------------------------------------------------------

    def account_changed(self, user_id: str, active: bool) -> None:
        """Told by the account service (runtime.py wires it): a disabled account's streams end."""
        if not active:
            self.close_streams_of({user_id})

    def close_streams_of(self, user_ids: set[str]) -> None:
        """End every stream of these accounts: sockets close with 4401, event streams end.

        Watchers count too: an event stream still reading its snapshot is not attached yet."""
        candidates: Iterable[Subscriber] = set(chain(self.subscribers, *self._order_watchers.values(),
                                                     *self._store_watchers.values(),
                                                     *self._customer_watchers.values()))
        for subscriber in candidates:
            if subscriber.closed or subscriber.principal.user_id not in user_ids:
                continue
            if subscriber.abort is None:
                subscriber.close()
                continue
            closing = asyncio.create_task(subscriber.abort(CLOSE_UNAUTHORISED))
            self._closing.add(closing)  # the loop keeps only weak references
            closing.add_done_callback(self._closing.discard)

    async def close_streams_of_disabled_accounts(self, subscribers: list[Subscriber]) -> None:
        """After missed messages: end the streams of accounts disabled or removed meanwhile
        (one read for all of this process's callers)."""
        user_ids = {s.principal.user_id for s in subscribers}
        try:
            active = await self._subscriptions.active_accounts(user_ids)
        except Exception:  # the tokens' lifetime still bounds these streams
            log.exception("could not re-check the accounts of open streams")
            return
        self.close_streams_of(user_ids - active)

    # --- faults ----------------------------------------------------------------------------

    def _connection_changed(self, connected: bool) -> None:
        # Events may be missed until the resync below: nothing held can be trusted meanwhile.
        self._latest.clear()
        self._listening.clear()
        if connected:
            self._listening.update(self._order_watchers)
        if connected and self.subscribers:
            if self._resync and not self._resync.done():
                self._resync.cancel()
            self._resync = asyncio.create_task(self.send_fresh_snapshots(list(self.subscribers)))
            if self._recheck is None or self._recheck.done():
                self._recheck = asyncio.create_task(self.close_streams_of_disabled_accounts(list(self.subscribers)))

    async def send_fresh_snapshots(self, subscribers: list[Subscriber]) -> None:
        """After missed messages: every subscriber gets its whole current state again.

        One query for all watched orders and one per watched store or customer, however many
        subscribers.
        """
        order_ids = {oid for s in subscribers for oid in s.order_ids}
        store_ids = {sid for s in subscribers for sid in s.store_ids}
        listening = {oid for oid in order_ids if oid in self._listening}
        orders = {c.order_id: c for c in map(as_change, await self._subscriptions.orders(order_ids))}
        for order_id in listening & orders.keys():
            orders[order_id] = self._hold(orders[order_id])
        boards = {sid: list(map(as_change, await self._subscriptions.store_board(sid))) for sid in store_ids}
        customer_ids = {uid for s in subscribers for uid in s.customer_ids}
        mine = {uid: list(map(as_change, await self._subscriptions.customer_orders(uid))) for uid in customer_ids}
        for subscriber in subscribers:
            if subscriber.closed:
                continue
            chosen = {oid: orders[oid] for oid in subscriber.order_ids if oid in orders}
            for sid in subscriber.store_ids:
                chosen.update({c.order_id: c for c in boards.get(sid, [])})
            for uid in subscriber.customer_ids:
                chosen.update({c.order_id: c for c in mine.get(uid, [])})
            entries = await self._snapshot_entries(subscriber, list(chosen.values()))
            subscriber.needs_snapshot = False
            subscriber.send_snapshot(entries)

    async def _watch_stalls(self) -> None:
        """Close subscribers stuck on one write for the stall limit; resync those that overflowed."""
        limit = self._settings.ws_stall_close_seconds
        while True:
            await asyncio.sleep(min(1.0, limit / 4))
            now = time.monotonic()
            overflowed = []
            for subscriber in list(self.subscribers):
                if subscriber.sending_since is not None and now - subscriber.sending_since > limit:
                    log.info("closing a subscriber stalled for %.0f s", now - subscriber.sending_since)
                    subscriber.sending_since = None
                    if subscriber.abort:
                        closing = asyncio.create_task(subscriber.abort(CLOSE_STALLED))
                        self._closing.add(closing)  # the loop keeps only weak references
                        closing.add_done_callback(self._closing.discard)
                elif subscriber.needs_snapshot and subscriber.queue_empty:
                    overflowed.append(subscriber)
            if overflowed:
                try:
                    await self.send_fresh_snapshots(overflowed)
                except Exception:
                    log.exception("resync of overflowed subscribers failed")
            await self._trimmer.maybe_trim()

