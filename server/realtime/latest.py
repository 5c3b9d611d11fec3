"""The newest message a stream has not sent yet, and a wake-up: a slow reader skips straight to
the latest state instead of working through a queue of old ones (menus, pickup boards)."""

from __future__ import annotations

import asyncio


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
