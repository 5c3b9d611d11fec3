"""What a broker engine must do. Another engine (NATS, Redis Streams) is one new file."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

Deliver = Callable[[str, bytes], None]
"""Called with (channel, payload) for every message on a subscribed channel."""

ConnectionChanged = Callable[[bool], None]
"""Called with False when messages may have been missed, True once subscriptions are live again."""

Confirmation = asyncio.Future[None]
"""Done once the engine confirmed a subscription: from then on every message published reaches us."""

LIVENESS_SECONDS = 10.0
"""How long a listener connection may deliver nothing, not even its own probe, before it counts as dead."""


class BrokerBackend(ABC):
    @abstractmethod
    async def connect(self, deliver: Deliver, connection_changed: ConnectionChanged) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def subscribe(self, channel: str) -> Confirmation | None:
        """Ask for `channel`'s messages. Returns when the request is sent, with what to await for
        the engine's confirmation; None when there is nothing to wait for (the engine is in this
        process, or the connection is down and its return re-subscribes and reports a resync)."""

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def publish(self, channels: Sequence[str], payload: bytes) -> None: ...

    @abstractmethod
    async def ping(self) -> bool: ...
