"""This process's subscribers and who watches what.

The hub listens to the broker only for channels its subscribers watch (reference-counted by
the broker), decodes each event once, and hands it to every watcher's queue: no task, no JSON
encoding and no database read per subscriber per event. What a caller may watch, and the
snapshots it starts from, come from the subscription service.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from itertools import chain
from typing import TYPE_CHECKING, Any

import orjson

from server import metrics
from server.config import Settings
from server.domain import messages
from server.domain.clock import iso_z
from server.realtime.broker import Broker
from server.realtime.catalog_feed import CatalogFeed
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange
from server.realtime.frames import CLOSE_UNAUTHORISED
from server.services.changes import customer_channel, is_estimates, order_channel, store_channel
from server.services.subscriptions import SubscriptionRefused, SubscriptionService
from server.views import event_order, kitchen_fields

if TYPE_CHECKING:
    from server.models import Order

log = logging.getLogger("orderpulse.hub")

MAX_ORDERS_PER_SUBSCRIBER = 1000
CLOSE_STALLED = 1013  # "try again later": stuck on one write for the stall limit


def snapshot_entry(order: Order, sees_kitchen: bool) -> dict[str, Any]:
    entry = event_order(order)
    if sees_kitchen:
        entry.update(kitchen_fields(order))
    return entry


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

    # --- membership ------------------------------------------------------------------------

    def attach(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)

    async def detach(self, subscriber: Subscriber) -> None:
        subscriber.close()
        self.subscribers.discard(subscriber)
        for order_id in list(subscriber.order_ids):
            await self._unwatch(subscriber, "order", order_id)
        for store_id in list(subscriber.store_ids):
            await self._unwatch(subscriber, "store", store_id)
        for user_id in list(subscriber.customer_ids):
            await self._unwatch(subscriber, "customer", user_id)

    async def subscribe_orders(self, subscriber: Subscriber, order_ids: list[str]) -> list[dict[str, Any]]:
        """Watch orders the caller may see; returns the snapshot entries. Refuses the whole frame
        if any id is not the caller's, without saying whether it exists.

        Events stay held until the caller queues the snapshot with `subscriber.send_snapshot`
        (or gives up on it with `release_events`), so the snapshot always goes out first."""
        if len(subscriber.order_ids | set(order_ids)) > MAX_ORDERS_PER_SUBSCRIBER:
            raise SubscriptionRefused("rate_limited",
                                      messages.WATCH_TOO_MANY_ORDERS.format(maximum=MAX_ORDERS_PER_SUBSCRIBER))
        await self._subscriptions.check_orders(subscriber.principal, order_ids)
        subscriber.hold_events()
        try:
            for order_id in order_ids:
                await self._watch(subscriber, "order", order_id)
            # Re-read after listening, so no change can fall between the read and the subscription.
            return await self._snapshot_entries(subscriber, await self._subscriptions.orders(order_ids))
        except BaseException:
            subscriber.release_events()
            raise

    async def subscribe_store(self, subscriber: Subscriber, store_id: str) -> list[dict[str, Any]]:
        await self._subscriptions.check_store(subscriber.principal, store_id)
        subscriber.hold_events()
        try:
            await self._watch(subscriber, "store", store_id)
            return await self._snapshot_entries(subscriber, await self._subscriptions.store_board(store_id))
        except BaseException:
            subscriber.release_events()
            raise

    async def subscribe_mine(self, subscriber: Subscriber) -> list[dict[str, Any]]:
        """Watch the caller's own orders, those placed later included (from any page or partner
        app); returns their active and recently finished orders. Nobody else's can be named."""
        user_id = subscriber.principal.user_id
        subscriber.hold_events()
        try:
            await self._watch(subscriber, "customer", user_id)
            return await self._snapshot_entries(subscriber, await self._subscriptions.customer_orders(user_id))
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

    async def _snapshot_entries(self, subscriber: Subscriber, orders: list[Order]) -> list[dict[str, Any]]:
        """The snapshot's orders in the event shape, each with its ready-time estimate (or null)."""
        estimates = await self._subscriptions.estimates(orders)
        return [{**snapshot_entry(order, subscriber.sees_kitchen), "estimatedReadyAt": iso_z(estimates.get(str(order.id)))}
                for order in orders if subscriber.accept_snapshot_version(str(order.id), order.version)]

    def _kind(self, subscriber: Subscriber, kind: str) -> tuple[set[str], dict[str, set[Subscriber]], Callable[[str], str]]:
        """What a subscriber watches of one kind, who watches each key, and the key's channel."""
        if kind == "order":
            return subscriber.order_ids, self._order_watchers, order_channel
        if kind == "customer":
            return subscriber.customer_ids, self._customer_watchers, customer_channel
        return subscriber.store_ids, self._store_watchers, store_channel

    async def _watch(self, subscriber: Subscriber, kind: str, key: str) -> None:
        mine, watchers_of, channel = self._kind(subscriber, kind)
        if key in mine:
            return
        mine.add(key)
        watchers = watchers_of[key]
        watchers.add(subscriber)
        metrics.SUBSCRIPTIONS.labels(kind).inc()
        if len(watchers) == 1:
            await self._broker.subscribe(channel(key), self._on_message)

    async def _unwatch(self, subscriber: Subscriber, kind: str, key: str) -> None:
        mine, watchers_of, channel = self._kind(subscriber, kind)
        if key not in mine:
            return
        mine.discard(key)
        metrics.SUBSCRIPTIONS.labels(kind).dec()
        watchers = watchers_of.get(key)
        if watchers is not None:
            watchers.discard(subscriber)
            if not watchers:
                del watchers_of[key]
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
        delivered = sum(subscriber.offer(change) for subscriber in tuple(watchers))
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
        orders = {str(o.id): o for o in await self._subscriptions.orders(order_ids)}
        boards = {sid: await self._subscriptions.store_board(sid) for sid in store_ids}
        customer_ids = {uid for s in subscribers for uid in s.customer_ids}
        mine = {uid: await self._subscriptions.customer_orders(uid) for uid in customer_ids}
        for subscriber in subscribers:
            if subscriber.closed:
                continue
            chosen = {oid: orders[oid] for oid in subscriber.order_ids if oid in orders}
            for sid in subscriber.store_ids:
                chosen.update({str(o.id): o for o in boards.get(sid, [])})
            for uid in subscriber.customer_ids:
                chosen.update({str(o.id): o for o in mine.get(uid, [])})
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

