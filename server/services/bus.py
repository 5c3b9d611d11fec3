"""What the services need of the message bus between server processes.

The services own this interface and publish through it; `server.realtime.broker.Broker` is the
implementation runtime.py passes in, so no use case depends on the real-time adapters.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

Listener = Callable[[str, bytes], None]
"""Called with the channel and the payload of every message on a subscribed channel."""


class MessageBus(Protocol):
    connected: bool

    async def publish(self, channels: Sequence[str], payload: bytes) -> None:
        """Send one payload to every listener of these channels, in every process."""

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Listen to a channel in this process."""

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        """Stop listening; unknown listeners are ignored."""

    def on_connection_change(self, listener: Callable[[bool], None]) -> None:
        """Call `listener(connected)` when the bus loses or regains its connection."""
