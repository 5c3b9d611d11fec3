"""Menu watchers: pages that follow one store's menu, fed by its `catalog:{storeId}` messages.

Each catalog message is the store's whole menu (server/services/catalog.py), so a watcher keeps
only the newest revision it has not sent yet: a slow page skips straight to the current menu
and memory per watcher is one message. The broker is asked once per watched store, and after
a broker reconnect every watched store's menu is read again (a change may have been missed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from server.realtime.broker import Broker
from server.realtime.latest import StoreWatcher, StoreWatchers
from server.services.changes import catalog_channel

log = logging.getLogger("orderpulse.catalog_feed")

ReadMenu = Callable[[str], Awaitable[dict[str, Any] | None]]
"""The store's menu snapshot now (None: no such store)."""


class MenuWatcher(StoreWatcher):
    """One page's view of one store's menu: the newest unsent message, and a wake-up."""

    def __init__(self, store_id: str) -> None:
        super().__init__(store_id)
        self.revision = -1

    def offer(self, revision: int, payload: bytes) -> None:
        if self.closed or revision <= self.revision:
            return
        self.revision = revision
        self.put(payload)


class CatalogFeed:
    def __init__(self, broker: Broker, read_menu: ReadMenu) -> None:
        self._read_menu = read_menu
        self._watchers = StoreWatchers[MenuWatcher](broker, lambda store_id: (catalog_channel(store_id),),
                                                    self._on_message)
        self._resync: asyncio.Task[None] | None = None
        broker.on_connection_change(self._connection_changed)

    async def watch(self, store_id: str) -> MenuWatcher | None:
        """Start following a store's menu, with its current menu already offered; None (and
        nothing left watching) when there is no such store."""
        watcher = MenuWatcher(store_id)
        snapshot = await self._watchers.add(watcher, lambda: self._read_menu(store_id))
        if snapshot is None:
            return None
        watcher.offer(snapshot["revision"], orjson.dumps(snapshot))
        return watcher

    async def unwatch(self, watcher: MenuWatcher) -> None:
        await self._watchers.remove(watcher)

    def stop(self) -> None:
        if self._resync is not None:
            self._resync.cancel()
        self._watchers.close_all()

    def _on_message(self, channel: str, payload: bytes) -> None:
        watchers = self._watchers.of(channel.partition(":")[2])
        if not watchers:
            return
        revision = orjson.loads(payload)["revision"]
        for watcher in watchers:
            watcher.offer(revision, payload)

    def _connection_changed(self, connected: bool) -> None:
        stores = self._watchers.stores()
        if connected and stores:
            if self._resync is not None and not self._resync.done():
                self._resync.cancel()
            self._resync = asyncio.create_task(self._read_again(stores))

    async def _read_again(self, store_ids: list[str]) -> None:
        for store_id in store_ids:
            try:
                snapshot = await self._read_menu(store_id)
            except Exception:
                log.warning("could not re-read the menu of store %s after a broker reconnect", store_id)
                continue
            if snapshot is not None:
                payload = orjson.dumps(snapshot)
                for watcher in self._watchers.of(store_id):
                    watcher.offer(snapshot["revision"], payload)

