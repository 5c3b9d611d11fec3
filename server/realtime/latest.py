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


class SharedListens:
    """Broker subscriptions this process makes once for all the watchers of a key (an order's
    channel for the hub, a store's channels for its pages). The first watcher asks; a later one
    waits until the broker confirmed it, since a state read before then could miss a change
    published meanwhile (tests/realtime/test_shared_channel_confirmed.py); and if the one asking
    ends without it (cancelled), a waiting one asks in its place."""

    def __init__(self) -> None:
        self._heard: set[str] = set()
        self._asking: dict[str, asyncio.Future[None]] = {}

    def asking(self, key: str) -> bool:
        return key in self._asking

    async def ensure(self, key: str, listen: Callable[[], Awaitable[None]]) -> None:
        """Return once `key` is listened to, calling `listen` if nobody else is asking for it."""
        while key not in self._heard:
            if (asked := self._asking.get(key)) is not None:
                await asyncio.shield(asked)
                continue
            asking = self._asking[key] = asyncio.get_running_loop().create_future()
            try:
                await listen()
                self._heard.add(key)
            finally:
                del self._asking[key]
                asking.set_result(None)

    def forget(self, key: str) -> None:
        """`key`'s last watcher is gone: its next one asks again."""
        self._heard.discard(key)


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
        self._listens = SharedListens()

    async def add(self, watcher: W, read: Callable[[], Awaitable[T | None]]) -> T | None:
        """Add `watcher` and return what `read` gives once its store is listened to; None (and the
        watcher removed) when `read` finds no such store."""
        watchers = self._by_store[watcher.store_id]
        watchers.add(watcher)
        try:
            await self._listens.ensure(watcher.store_id, lambda: self._listen(watcher.store_id))
            state = await read()
        except BaseException:
            await self.remove(watcher)
            raise
        if state is None:
            await self.remove(watcher)
        return state

    async def _listen(self, store_id: str) -> None:
        asked_for: list[str] = []
        try:
            for channel in self._channels(store_id):
                await self._broker.subscribe(channel, self._listener)
                asked_for.append(channel)
        except BaseException:
            # Not listened to: whoever asks next asks for every channel again, and the broker
            # counts a listener once per ask.
            for channel in asked_for:
                await self._broker.unsubscribe(channel, self._listener)
            raise

    async def remove(self, watcher: W) -> None:
        watcher.close()
        watchers = self._by_store.get(watcher.store_id)
        if watchers is None or watcher not in watchers:
            return
        watchers.discard(watcher)
        if not watchers:
            del self._by_store[watcher.store_id]
            self._listens.forget(watcher.store_id)
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
