"""Pub/sub between server processes, with reference-counted channel subscriptions.

The shape follows encode/broadcaster: one public class, engines behind a tiny base class,
picked by URL scheme (`memory://`, `redis://`, `redis+cluster://`). Unlike broadcaster, a lost connection is never
silent: listeners registered with `on_connection_change` hear about it, so caches can drop
what may be stale and hubs can send fresh snapshots once the engine is back.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from urllib.parse import urlparse

from server import metrics
from server.realtime.backends.base import LIVENESS_SECONDS, BrokerBackend, Confirmation
from server.services.bus import Listener

log = logging.getLogger("orderpulse.broker")


def backend_for(url: str | None, liveness: float = LIVENESS_SECONDS) -> BrokerBackend:
    scheme = urlparse(url).scheme if url else "memory"
    if scheme == "memory":
        from server.realtime.backends.memory import MemoryBackend
        return MemoryBackend()
    if scheme in ("redis", "rediss", "unix"):
        from server.realtime.backends.redis import RedisBackend
        return RedisBackend(url or "", liveness)
    if scheme in ("redis+cluster", "rediss+cluster"):
        from server.realtime.backends.redis_cluster import RedisClusterBackend
        return RedisClusterBackend(url or "", liveness)
    raise ValueError(f"Unsupported broker URL scheme: {scheme!r}")


class Broker:
    """The message bus the services publish through (`server.services.bus.MessageBus`)."""

    def __init__(self, url: str | None = None, backend: BrokerBackend | None = None,
                 liveness: float = LIVENESS_SECONDS) -> None:
        self._backend = backend or backend_for(url, liveness)
        self._liveness = liveness
        self._listeners: dict[str, list[Listener]] = defaultdict(list)
        # Channels the engine was asked for and has not confirmed yet.
        self._confirming: dict[str, Confirmation] = {}
        self._connection_listeners: list[Callable[[bool], None]] = []
        self._lock = asyncio.Lock()
        self.connected = False

    async def connect(self) -> None:
        await self._backend.connect(self._deliver, self._connection_changed)
        self.connected = True
        metrics.BROKER_UP.set(1)

    async def disconnect(self) -> None:
        self.connected = False
        await self._backend.disconnect()
        self._listeners.clear()

    async def publish(self, channels: Sequence[str], payload: bytes) -> None:
        await self._backend.publish(channels, payload)

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Listen to a channel; the engine is asked only for the first listener. Returns once the
        engine confirmed the channel (or, after `liveness`, counts on the connection's loss being
        reported), so a state read afterwards can be followed by its events without a gap."""
        async with self._lock:
            listeners = self._listeners[channel]
            listeners.append(listener)
            if len(listeners) == 1:
                try:
                    confirmation = await self._backend.subscribe(channel)
                except BaseException:
                    # Cancelled too (its caller gone): a listener left counted here would keep
                    # every later listener of the channel from asking the engine for it.
                    listeners.remove(listener)
                    del self._listeners[channel]
                    raise
                metrics.BROKER_CHANNELS.set(len(self._listeners))
                if confirmation is not None and not confirmation.done():
                    self._confirming[channel] = confirmation
                    confirmation.add_done_callback(lambda _: self._confirmed(channel, confirmation))
            waiting = self._confirming.get(channel)
        if waiting is not None:
            # Outside the lock: other channels' subscriptions go ahead meanwhile.
            await asyncio.wait({waiting}, timeout=self._liveness)

    def _confirmed(self, channel: str, confirmation: Confirmation) -> None:
        if self._confirming.get(channel) is confirmation:
            del self._confirming[channel]

    async def unsubscribe(self, channel: str, listener: Listener) -> None:
        async with self._lock:
            listeners = self._listeners.get(channel)
            if not listeners or listener not in listeners:
                return
            listeners.remove(listener)
            if not listeners:
                del self._listeners[channel]
                metrics.BROKER_CHANNELS.set(len(self._listeners))
                try:
                    await self._backend.unsubscribe(channel)
                except Exception:  # the engine has forgotten it: a reconnect does not re-subscribe it
                    log.warning("unsubscribe from %s failed; dropped locally", channel)

    def on_connection_change(self, listener: Callable[[bool], None]) -> None:
        self._connection_listeners.append(listener)

    async def ping(self) -> bool:
        try:
            return self.connected and await self._backend.ping()
        except Exception:
            return False

    def _deliver(self, channel: str, payload: bytes) -> None:
        for listener in tuple(self._listeners.get(channel, ())):
            try:
                listener(channel, payload)
            except Exception:
                log.exception("broker listener failed on %s", channel)

    def _connection_changed(self, connected: bool) -> None:
        self.connected = connected
        metrics.BROKER_UP.set(int(connected))
        if connected:
            metrics.BROKER_RECONNECTS.inc()
        for listener in tuple(self._connection_listeners):
            try:
                listener(connected)
            except Exception:
                log.exception("connection listener failed")
