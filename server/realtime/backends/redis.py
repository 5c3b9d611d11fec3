"""Redis pub/sub: any number of server processes fan out every event.

One connection publishes, one dedicated connection listens. The listener proves itself alive
with a probe through the broker: every `liveness / 3` seconds a message is published on the
process's own probe channel, and a listener that hears nothing at all for `liveness` seconds is
dead even when its socket looks open (a frozen Redis, a path that drops packets without a reset:
centrifugo#1189). It then reports the loss, reconnects with jittered exponential backoff,
re-subscribes to every channel it had, and reports the recovery (encode/broadcaster#144: ours
never hangs silently). `redis_cluster.py` runs one such listener per cluster shard.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.crc import key_slot
from redis.exceptions import RedisError

from server import metrics
from server.realtime.backends.base import LIVENESS_SECONDS, BrokerBackend, Confirmation, ConnectionChanged, Deliver

log = logging.getLogger("orderpulse.broker.redis")

BACKOFF_FIRST = 0.05
BACKOFF_MAX = 1.0
PROBE_PREFIX = "orderpulse:probe:"

Probe = Callable[[str, bytes], Awaitable[object]]


class Silent(ConnectionError):
    """A listener heard nothing, not even its own probe, within the liveness bound."""


class Moved(ConnectionError):
    """Redis Cluster unsubscribed a channel we still want: its slot moved to another shard."""


def no_retry() -> Retry:
    """A listener's connection never reconnects by itself: a silent reconnect could miss messages
    unseen, so every break surfaces to the backend, which reports it and resynchronises."""
    return Retry(NoBackoff(), 0)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class Listener:
    """One pub/sub connection, the channels subscribed on it, and its liveness probe."""

    def __init__(self, client: aioredis.Redis, *, sharded: bool, probe_channel: str, probe: Probe,
                 liveness: float) -> None:
        self.client = client
        self.pubsub = client.pubsub()
        self.sharded = sharded
        self.probe_channel = probe_channel
        self.channels: set[str] = set()
        self._probe = probe
        self._liveness = liveness
        self._leaving: Counter[str] = Counter()
        # Subscriptions sent and not yet confirmed, per channel, in the order Redis answers them.
        self._confirming: dict[str, deque[Confirmation]] = {}
        self._probing: asyncio.Task[None] | None = None

    async def open(self, channels: Iterable[str], deliver: Deliver) -> None:
        """Subscribe, and return once Redis confirmed it (so a resync after this misses nothing)."""
        self.channels = set(channels)
        await self._subscribe(*self.channels)
        await self._subscribe(self.probe_channel)
        while True:
            message = await self.pubsub.get_message(timeout=self._liveness)
            if message is None:
                raise Silent(f"no subscription confirmed within {self._liveness:g} s")
            self._take(message, deliver)
            if message["type"] in ("subscribe", "ssubscribe") and _text(message["channel"]) == self.probe_channel:
                return

    async def add(self, channel: str) -> Confirmation:
        """Subscribe `channel`; the result is done once Redis confirmed it. Until then a message
        published by another connection may still pass this one by (on a slow link, the command
        is still on its way), so whoever reads a state to follow with events waits for it."""
        self.channels.add(channel)
        confirmation: Confirmation = asyncio.get_running_loop().create_future()
        self._confirming.setdefault(channel, deque()).append(confirmation)
        await self._subscribe(channel)
        return confirmation

    async def remove(self, channel: str) -> None:
        self.channels.discard(channel)
        self._leaving[channel] += 1
        await (self.pubsub.sunsubscribe(channel) if self.sharded else self.pubsub.unsubscribe(channel))

    async def _subscribe(self, *channels: str) -> None:
        if not channels:
            return
        if not self.sharded:
            await self.pubsub.subscribe(*channels)
            return
        # One SSUBSCRIBE per hash slot: one naming channels of two slots is a CROSSSLOT error.
        by_slot: dict[int, list[str]] = {}
        for channel in channels:
            by_slot.setdefault(key_slot(channel.encode()), []).append(channel)
        for group in by_slot.values():
            await self.pubsub.ssubscribe(*group)

    async def read_until_broken(self, deliver: Deliver) -> None:
        """Deliver messages until the connection breaks or falls silent; then raise."""
        heard = probed = time.monotonic()
        self._send_probe()
        while True:
            message = await self.pubsub.get_message(timeout=min(1.0, self._liveness / 3))
            now = time.monotonic()
            if message is not None:
                heard = now
                self._take(message, deliver)
            elif now - heard > self._liveness:
                metrics.BROKER_SILENT_CONNECTIONS.inc()
                raise Silent(f"nothing came through, not even a probe, for {self._liveness:g} s")
            if now - probed >= self._liveness / 3:
                probed = now
                self._send_probe()

    def _take(self, message: dict[str, Any], deliver: Deliver) -> None:
        kind = message["type"]
        channel = _text(message["channel"]) if message.get("channel") is not None else ""
        if kind in ("message", "smessage"):
            if channel != self.probe_channel:
                deliver(channel, message["data"])
        elif kind in ("subscribe", "ssubscribe"):
            waiting = self._confirming.get(channel)
            if waiting:
                confirmation = waiting.popleft()
                if not waiting:
                    del self._confirming[channel]
                if not confirmation.done():
                    confirmation.set_result(None)
        elif kind in ("unsubscribe", "sunsubscribe"):
            if self._leaving[channel]:
                self._leaving[channel] -= 1
                if not self._leaving[channel]:
                    del self._leaving[channel]
            elif channel in self.channels or channel == self.probe_channel:
                raise Moved(f"Redis unsubscribed {channel} (its slot moved)")

    def _send_probe(self) -> None:
        if self._probing is None or self._probing.done():
            self._probing = asyncio.create_task(self._probe_once(), name="redis-broker-probe")

    async def _probe_once(self) -> None:
        try:
            await asyncio.wait_for(self._probe(self.probe_channel, b"probe"), self._liveness)
        except Exception as exc:  # the reader notices the silence; the probe only provokes it
            log.debug("liveness probe on %s not sent: %s", self.probe_channel, exc)

    async def close(self) -> None:
        # Whoever waits for a confirmation goes on: the loss is reported and followed by a resync.
        for waiting in self._confirming.values():
            for confirmation in waiting:
                if not confirmation.done():
                    confirmation.set_result(None)
        self._confirming.clear()
        probing, self._probing = self._probing, None
        if probing is not None:
            probing.cancel()
            await asyncio.gather(probing, return_exceptions=True)
        for closing in (self.pubsub, self.client):
            try:
                await closing.aclose()
            except Exception:
                pass


class RedisBackend(BrokerBackend):
    def __init__(self, url: str, liveness: float = LIVENESS_SECONDS) -> None:
        self._url = url
        self._liveness = liveness
        self._probe_channel = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
        self._publisher: aioredis.Redis | None = None
        self._listener: Listener | None = None
        self._channels: set[str] = set()
        self._deliver: Deliver | None = None
        self._connection_changed: ConnectionChanged | None = None
        self._reader: asyncio.Task[None] | None = None
        self._live = asyncio.Event()
        self._commands = asyncio.Lock()

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self._url, protocol=2, socket_connect_timeout=2, socket_timeout=5,
                                       retry_on_timeout=False)

    def _listener_client(self) -> aioredis.Redis:
        bound = max(0.5, self._liveness / 2)
        return aioredis.Redis.from_url(self._url, protocol=2, socket_connect_timeout=min(2, bound),
                                       socket_timeout=bound, retry=no_retry())

    async def connect(self, deliver: Deliver, connection_changed: ConnectionChanged) -> None:
        self._deliver = deliver
        self._connection_changed = connection_changed
        self._publisher = self._client()
        await self._publisher.ping()
        await self._open_listener()
        self._reader = asyncio.create_task(self._read_forever(), name="redis-broker-reader")

    async def disconnect(self) -> None:
        if self._reader:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self._close_listener()
        if self._publisher is not None:
            await self._publisher.aclose()
        self._channels.clear()

    async def _publish_one(self, channel: str, payload: bytes) -> None:
        assert self._publisher is not None
        await self._publisher.publish(channel, payload)

    async def _open_listener(self) -> None:
        listener = Listener(self._listener_client(), sharded=False, probe_channel=self._probe_channel,
                            probe=self._publish_one, liveness=self._liveness)
        try:
            await listener.open(self._channels, self._deliver or (lambda channel, payload: None))
        except BaseException:
            await listener.close()
            raise
        self._listener = listener
        self._live.set()

    async def _close_listener(self) -> None:
        self._live.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()

    async def subscribe(self, channel: str) -> Confirmation | None:
        self._channels.add(channel)
        try:
            async with self._commands:
                if self._listener is not None and self._live.is_set():
                    try:
                        return await self._listener.add(channel)
                    except (RedisError, OSError):
                        # The reader notices the broken connection and re-subscribes everything.
                        log.warning("subscribe to %s deferred until Redis is back", channel)
                return None
        except asyncio.CancelledError:
            self._channels.discard(channel)  # the broker forgets it too: nobody listens
            raise

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        async with self._commands:
            if self._listener is not None and self._live.is_set():
                try:
                    await self._listener.remove(channel)
                except (RedisError, OSError):
                    pass

    async def publish(self, channels: Sequence[str], payload: bytes) -> None:
        assert self._publisher is not None
        async with self._publisher.pipeline(transaction=False) as pipe:
            for channel in channels:
                pipe.publish(channel, payload)
            await pipe.execute()

    async def ping(self) -> bool:
        if self._publisher is None or not self._live.is_set():
            return False
        try:
            return bool(await self._publisher.ping())
        except (RedisError, OSError):
            return False

    async def _read_forever(self) -> None:
        while True:
            try:
                assert self._listener is not None and self._deliver is not None
                await self._listener.read_until_broken(self._deliver)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Redis listener lost: %s", exc)
            await self._close_listener()
            if self._connection_changed:
                self._connection_changed(False)
            await self._reconnect()
            if self._connection_changed:
                self._connection_changed(True)

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                async with self._commands:
                    await self._open_listener()
                log.info("Redis listener re-established with %d channels", len(self._channels))
                return
            except (RedisError, OSError) as exc:
                log.warning("Redis unavailable (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(BACKOFF_MAX, delay * 2)
