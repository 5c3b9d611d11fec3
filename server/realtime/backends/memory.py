"""The in-process broker: one process, no network, delivery inside `publish`."""

from __future__ import annotations

from collections.abc import Sequence

from server.realtime.backends.base import BrokerBackend, Confirmation, ConnectionChanged, Deliver


class MemoryBackend(BrokerBackend):
    def __init__(self) -> None:
        self._deliver: Deliver | None = None
        self._channels: set[str] = set()

    async def connect(self, deliver: Deliver, connection_changed: ConnectionChanged) -> None:
        self._deliver = deliver

    async def disconnect(self) -> None:
        self._deliver = None
        self._channels.clear()

    async def subscribe(self, channel: str) -> Confirmation | None:
        self._channels.add(channel)
        return None

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)

    async def publish(self, channels: Sequence[str], payload: bytes) -> None:
        deliver = self._deliver
        if deliver is None:
            return
        for channel in channels:
            if channel in self._channels:
                deliver(channel, payload)

    async def ping(self) -> bool:
        return self._deliver is not None
