"""What a broker engine must do. Another engine (NATS, Redis Streams) is one new file."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

Deliver = Callable[[str, bytes], None]
"""Called with (channel, payload) for every message on a subscribed channel."""

ConnectionChanged = Callable[[bool], None]
"""Called with False when messages may have been missed, True once subscriptions are live again."""

LIVENESS_SECONDS = 10.0
"""How long a listener connection may deliver nothing, not even its own probe, before it counts as dead."""


class BrokerBackend(ABC):
    @abstractmethod
    async def connect(self, deliver: Deliver, connection_changed: ConnectionChanged) -> None: ...

    @abstractmethod
    async def disconnect(self) -> None: ...

    @abstractmethod
    async def subscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def unsubscribe(self, channel: str) -> None: ...

    @abstractmethod
    async def publish(self, channels: Sequence[str], payload: bytes) -> None: ...

    @abstractmethod
    async def ping(self) -> bool: ...
