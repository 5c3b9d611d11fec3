"""A subscription counts from Redis's confirmation, not from sending the command: on a slow link
between a server and Redis, a change published by another server right after `subscribe` returned
still reaches this one (the hub reads the order's snapshot right after, and trusts its events from
then on)."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis.asyncio as aioredis

from server.realtime.broker import Broker

LINK_DELAY_SECONDS = 0.25


class SlowLink:
    """A TCP relay to Redis that holds every chunk, in each direction, for `delay` seconds."""

    def __init__(self, host: str, port: int, delay: float) -> None:
        self.host, self.port, self.delay = host, port, delay
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        for source, target in ((reader, upstream_writer), (upstream_reader, writer)):
            task = asyncio.create_task(self._pipe(source, target))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _pipe(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        held: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                due, chunk = await held.get()
                await asyncio.sleep(max(0.0, due - loop.time()))
                if not chunk:
                    target.close()
                    return
                target.write(chunk)

        sending = asyncio.create_task(deliver())
        try:
            while chunk := await source.read(65536):
                held.put_nowait((loop.time() + self.delay, chunk))
            held.put_nowait((loop.time() + self.delay, b""))
            await sending
        except (ConnectionError, asyncio.CancelledError):
            sending.cancel()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


@pytest.fixture
async def slow_broker(redis_server):
    host, port = redis_server.url.removeprefix("redis://").split("/")[0].split(":")
    link = SlowLink(host, int(port), LINK_DELAY_SECONDS)
    broker = Broker(await link.start(), liveness=10)
    await broker.connect()
    try:
        yield broker
    finally:
        await broker.disconnect()
        await link.close()


async def test_a_change_published_right_after_subscribe_returned_is_delivered(slow_broker, redis_server):
    direct = aioredis.Redis.from_url(redis_server.url)
    try:
        for _ in range(3):
            channel = f"order:{uuid.uuid4().hex[:24]}"
            heard: asyncio.Queue[bytes] = asyncio.Queue()
            await slow_broker.subscribe(channel, lambda _channel, payload: heard.put_nowait(payload))
            # Another server's change, over a fast link, right after this one subscribed.
            await direct.publish(channel, b"v2")
            assert await asyncio.wait_for(heard.get(), 5 * LINK_DELAY_SECONDS + 5) == b"v2"
    finally:
        await direct.aclose()
