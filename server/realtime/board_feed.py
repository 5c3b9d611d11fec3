"""Pickup boards (issue 27): pages that follow one store's board, fed by its order changes.

A board never sees the store channel's messages themselves (they carry names and items for the
kitchen): any change of the store's orders, or of its board settings, only makes this process
read the board again (server/services/board.py shapes it: short numbers only), and each board is
offered the result when it differs from what it was last sent. Reads of one store never overlap:
changes that arrive during a read cause one more read after it. After a broker reconnect every
watched store is read again (a change may have been missed).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson

from server import metrics
from server.realtime.broker import Broker
from server.realtime.latest import StoreWatcher, StoreWatchers
from server.realtime.sse import RETRY_MILLISECONDS, EventStream
from server.services.board import board_channel
from server.services.changes import is_estimates, store_channel

log = logging.getLogger("orderpulse.board_feed")

ReadBoard = Callable[[str], Awaitable[dict[str, Any] | None]]
"""The store's board now (None: no such store)."""


class BoardWatcher(StoreWatcher):
    """One board's view: the newest board it has not sent yet, and a wake-up."""

    def __init__(self, store_id: str) -> None:
        super().__init__(store_id)
        self._last: bytes | None = None

    def offer(self, payload: bytes) -> None:
        if self.closed or payload == self._last:
            return
        self._last = payload
        self.put(payload)


class BoardFeed:
    def __init__(self, broker: Broker, read_board: ReadBoard) -> None:
        self._read_board = read_board
        self._watchers = StoreWatchers[BoardWatcher](broker, self.channels, self._on_message)
        self._reads: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._open_by_link: Counter[str] = Counter()
        broker.on_connection_change(self._connection_changed)

    def admit(self, link: str, most: int) -> bool:
        """Count one more open stream of a display link, unless it has `most` open in this process:
        a TV needs one, and a leaked link must not be able to hold thousands."""
        if self._open_by_link[link] >= most:
            return False
        self._open_by_link[link] += 1
        return True

    def release(self, link: str) -> None:
        self._open_by_link[link] -= 1
        if self._open_by_link[link] <= 0:
            del self._open_by_link[link]

    def channels(self, store_id: str) -> tuple[str, str]:
        return store_channel(store_id), board_channel(store_id)

    async def watch(self, store_id: str) -> BoardWatcher | None:
        """Start following a store's board, with its current board already offered; None (and
        nothing left watching) when there is no such store."""
        watcher = BoardWatcher(store_id)
        board = await self._watchers.add(watcher, lambda: self._read_board(store_id))
        if board is None:
            return None
        watcher.offer(orjson.dumps(board))
        return watcher

    async def unwatch(self, watcher: BoardWatcher) -> None:
        await self._watchers.remove(watcher)

    async def stop(self) -> None:
        reads = list(self._reads.values())
        for task in reads:
            task.cancel()
        await asyncio.gather(*reads, return_exceptions=True)
        self._watchers.close_all()

    def _on_message(self, channel: str, payload: bytes) -> None:
        if is_estimates(payload):  # estimates move no number between the board's columns
            return
        self._read_soon(channel.partition(":")[2])

    def _read_soon(self, store_id: str) -> None:
        if not self._watchers.of(store_id):
            return
        if store_id in self._reads:
            self._again.add(store_id)
            return
        self._reads[store_id] = asyncio.create_task(self._read(store_id), name=f"board-{store_id}")

    async def _read(self, store_id: str) -> None:
        try:
            while True:
                self._again.discard(store_id)
                try:
                    board = await self._read_board(store_id)
                except Exception:
                    log.warning("could not read the board of store %s", store_id)
                    board = None
                if board is not None:
                    payload = orjson.dumps(board)
                    for watcher in self._watchers.of(store_id):
                        watcher.offer(payload)
                if store_id not in self._again:
                    return
        finally:
            self._reads.pop(store_id, None)

    def _connection_changed(self, connected: bool) -> None:
        if connected:
            for store_id in self._watchers.stores():
                self._read_soon(store_id)


StillAllowed = Callable[[], Awaitable[bool]]
"""Whether the stream's credential still opens the board (a display link may be revoked)."""


async def open_board_stream(feed: BoardFeed, store_id: str, heartbeat_seconds: float,
                            still_allowed: StillAllowed, link: str | None = None) -> EventStream | None:
    """One store's board: a `board` event now and after every change of it, an `alive` event
    whenever `heartbeat_seconds` pass without one (a board that hears neither for a while knows
    its stream stalled), and `revoked` before it ends when its credential stops working (checked
    once per heartbeat). None when there is no such store. `link` names the display link the
    stream counts against (admitted by the caller), released when the stream ends."""
    try:
        watcher = await feed.watch(store_id)
    except BaseException:
        if link is not None:
            feed.release(link)
        raise
    if watcher is None:
        if link is not None:
            feed.release(link)
        return None
    alive = f'event: alive\ndata: {{"heartbeatSeconds":{heartbeat_seconds:g}}}\n\n'

    async def allowed() -> bool:
        try:
            return await still_allowed()
        except Exception:  # the database is away: the board goes on, its numbers stop moving
            return True

    async def stream() -> AsyncIterator[str]:
        metrics.SSE_STREAMS_OPEN.inc()
        loop = asyncio.get_running_loop()
        checked = loop.time()
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n{alive}"
            while not watcher.closed:
                payload = await watcher.next(heartbeat_seconds)
                if loop.time() - checked >= heartbeat_seconds:
                    checked = loop.time()
                    if not await allowed():
                        yield "event: revoked\ndata: {}\n\n"
                        return
                yield alive if payload is None else f"event: board\ndata: {payload.decode()}\n\n"
        finally:
            metrics.SSE_STREAMS_OPEN.dec()

    async def release() -> None:
        if link is not None:
            feed.release(link)
        await feed.unwatch(watcher)

    return EventStream(stream(), release=release)
