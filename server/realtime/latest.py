"""Pages that follow one store's state (menus, pickup boards): for each page the newest message it
has not sent yet and a wake-up, so a slow reader skips straight to the latest state instead of
working through a queue of old ones; and for each store its watchers and the broker subscriptions
they need."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from server.services.bus import Listener, MessageBus


class LatestMessage:
    def __init__(self) -> None:
        self._pending: bytes | None = None
        self._ready = asyncio.Event()
        self.closed = False

    def put(self, payload: bytes) -> None:
        """Replace whatever was waiting to be sent by `payload`."""
        self._pending = payload
        self._ready.set()

    async def next(self, timeout: float) -> bytes | None:
        """The next message to send, or None after `timeout` with nothing new (or once closed)."""
        if self._pending is None and not self.closed:
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                return None
        payload, self._pending = self._pending, None
        return payload

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class StoreWatcher(LatestMessage):
    """One page following one store."""

    def __init__(self, store_id: str) -> None:
        super().__init__()
        self.store_id = store_id


W = TypeVar("W", bound=StoreWatcher)
T = TypeVar("T")


class StoreWatchers(Generic[W]):
    """The watchers of each store: a store's channels are listened to for its first watcher and
    dropped with its last, and a new watcher's first state is read after listening (a later watcher
    waits for the first one's subscription as well), so no change can fall between the read and
    the subscription."""

    def __init__(self, broker: MessageBus, channels: Callable[[str], tuple[str, ...]], listener: Listener) -> None:
        self._broker = broker
        self._channels = channels
        self._listener = listener
        self._by_store: dict[str, set[W]] = defaultdict(set)
        # Stores whose channels the broker listens to, and those being asked for (done once the
        # broker confirmed them, or the watcher asking ended without it).
        self._heard: set[str] = set()
        self._subscribing: dict[str, asyncio.Future[None]] = {}

    async def add(self, watcher: W, read: Callable[[], Awaitable[T | None]]) -> T | None:
        """Add `watcher` and return what `read` gives once its store is listened to; None (and the
        watcher removed) when `read` finds no such store."""
        watchers = self._by_store[watcher.store_id]
        watchers.add(watcher)
        try:
            store_id = watcher.store_id
            while store_id not in self._heard:
                if (asked := self._subscribing.get(store_id)) is not None:
                    # Another watcher's subscription is not confirmed yet: a read now could miss a
                    # change published before it is (as the hub's watchers, server/realtime/hub.py).
                    # If that watcher ends without it (cancelled), this one asks in its place.
                    await asyncio.shield(asked)
                    continue
                subscribing = self._subscribing[store_id] = asyncio.get_running_loop().create_future()
                asked_for: list[str] = []
                try:
                    for channel in self._channels(store_id):
                        await self._broker.subscribe(channel, self._listener)
                        asked_for.append(channel)
                    self._heard.add(store_id)
                except BaseException:
                    # Not heard: whoever asks next asks for every channel again, and the broker
                    # counts a listener once per ask.
                    for channel in asked_for:
                        await self._broker.unsubscribe(channel, self._listener)
                    raise
                finally:
                    del self._subscribing[store_id]
                    subscribing.set_result(None)
            state = await read()
        except BaseException:
            await self.remove(watcher)
            raise
        if state is None:
            await self.remove(watcher)
        return state

    async def remove(self, watcher: W) -> None:
        watcher.close()
        watchers = self._by_store.get(watcher.store_id)
        if watchers is None or watcher not in watchers:
            return
        watchers.discard(watcher)
        if not watchers:
            del self._by_store[watcher.store_id]
            self._heard.discard(watcher.store_id)
            for channel in self._channels(watcher.store_id):
                await self._broker.unsubscribe(channel, self._listener)

    def of(self, store_id: str) -> tuple[W, ...]:
        return tuple(self._by_store.get(store_id, ()))

    def stores(self) -> list[str]:
        return list(self._by_store)

    def close_all(self) -> None:
        for watchers in self._by_store.values():
            for watcher in watchers:
                watcher.close()
