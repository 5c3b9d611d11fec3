"""Redis pub/sub: any number of server processes fan out every event.

One connection publishes, one dedicated connection listens. The listener pings Redis while
idle, so a dead connection is noticed within seconds even when no message flows; it then
reports the loss, reconnects with jittered exponential backoff, re-subscribes to every channel
it had, and reports the recovery (encode/broadcaster#144: ours never hangs silently).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from server.realtime.backends.base import BrokerBackend, ConnectionChanged, Deliver

log = logging.getLogger("orderpulse.broker.redis")

HEALTH_CHECK_SECONDS = 1.0
BACKOFF_FIRST = 0.05
BACKOFF_MAX = 2.0


class RedisBackend(BrokerBackend):
    def __init__(self, url: str) -> None:
        self._url = url
        self._publisher: aioredis.Redis | None = None
        self._pubsub_client: aioredis.Redis | None = None
        self._pubsub: aioredis.client.PubSub | None = None
        self._channels: set[str] = set()
        self._deliver: Deliver | None = None
        self._connection_changed: ConnectionChanged | None = None
        self._reader: asyncio.Task[None] | None = None
        self._live = asyncio.Event()
        self._has_channels = asyncio.Event()
        self._commands = asyncio.Lock()

    def _client(self) -> aioredis.Redis:
        return aioredis.Redis.from_url(self._url, protocol=2, socket_connect_timeout=2, socket_timeout=5,
                                       retry_on_timeout=False)

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

    async def _open_listener(self) -> None:
        self._pubsub_client = self._client()
        self._pubsub = self._pubsub_client.pubsub(ignore_subscribe_messages=True)
        if self._channels:
            await self._pubsub.subscribe(*self._channels)
        else:
            await self._pubsub_client.ping()
        self._live.set()

    async def _close_listener(self) -> None:
        self._live.clear()
        pubsub, client, self._pubsub, self._pubsub_client = self._pubsub, self._pubsub_client, None, None
        for closing in (pubsub, client):
            if closing is not None:
                try:
                    await closing.aclose()
                except Exception:
                    pass

    async def subscribe(self, channel: str) -> None:
        self._channels.add(channel)
        self._has_channels.set()
        async with self._commands:
            if self._pubsub is not None and self._live.is_set():
                try:
                    await self._pubsub.subscribe(channel)
                except (RedisError, OSError):
                    # The reader notices the broken connection and re-subscribes everything.
                    log.warning("subscribe to %s deferred until Redis is back", channel)

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        async with self._commands:
            if self._pubsub is not None and self._live.is_set():
                try:
                    await self._pubsub.unsubscribe(channel)
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
                await self._read_until_broken()
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

    async def _read_until_broken(self) -> None:
        last_heard = time.monotonic()
        while True:
            pubsub = self._pubsub
            assert pubsub is not None and self._pubsub_client is not None
            if not self._channels:
                # Nothing to listen to: still check the connection, so its loss is noticed.
                await self._pubsub_client.ping()
                self._has_channels.clear()
                try:
                    await asyncio.wait_for(self._has_channels.wait(), HEALTH_CHECK_SECONDS)
                except TimeoutError:
                    pass
                last_heard = time.monotonic()
                continue
            message = await pubsub.get_message(timeout=HEALTH_CHECK_SECONDS)
            now = time.monotonic()
            if message is None:
                # A silent connection may be a dead one: ask, and give up if nothing comes back.
                if now - last_heard > 3 * HEALTH_CHECK_SECONDS:
                    raise ConnectionError("Redis stopped answering the listener's pings")
                await pubsub.ping()
                continue
            last_heard = now
            if message.get("type") == "message" and self._deliver is not None:
                channel = message["channel"]
                self._deliver(channel.decode() if isinstance(channel, bytes) else channel, message["data"])

    async def _reconnect(self) -> None:
        delay = BACKOFF_FIRST
        while True:
            try:
                async with self._commands:
                    await self._open_listener()
                if self._publisher is not None:
                    await self._publisher.ping()
                log.info("Redis listener re-established with %d channels", len(self._channels))
                return
            except (RedisError, OSError) as exc:
                await self._close_listener()
                log.warning("Redis unavailable (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(BACKOFF_MAX, delay * 2)
