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
from tests.realtime.relays import SlowLink

LINK_DELAY_SECONDS = 0.25


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
