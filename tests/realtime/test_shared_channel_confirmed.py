"""Two subscribes of one process racing for one order channel: the one that reads the order must
not read it before Redis confirmed the channel, even when the other subscribe asked for the channel
first and is still waiting for Redis's answer.

The hub asks the broker for a channel only for its first watcher. A fresh process taking a storm of
reconnects (the rolling restart) runs many subscribes of the same orders at once, so one subscribe
could be the second watcher of a channel whose subscription another subscribe had sent and Redis
had not confirmed yet; it went on to read the order, and a change published between that read and
Redis's confirmation never reached this process, leaving every socket that shared the read one
version behind (a CI run: 71 sockets, one order, one version). Here a relay holds the listener
connection's commands so that the race is played out exactly."""

from __future__ import annotations

import asyncio
import json

from server.domain.access import Principal, Role
from server.realtime import frames
from server.realtime.broker import Broker
from server.realtime.client import Subscriber
from server.realtime.latest import StoreWatcher, StoreWatchers
from tests.realtime.relays import HeldSubscribes
from tests.support import until


def version_seen(subscriber: Subscriber, order_id: str) -> int:
    """The newest version of the order in what the subscriber was sent: snapshot, then events."""
    newest = 0
    while (frame := subscriber.pop_frame()) is not None:
        message = json.loads(frame)
        orders = message["orders"] if message["type"] == "snapshot" else [message.get("order", {})]
        newest = max([newest, *(o["version"] for o in orders if o.get("id") == order_id)])
    return newest


async def test_a_subscribe_reads_an_order_only_once_redis_confirmed_its_channel_for_this_process(
        api_factory, redis_server):
    host, port = redis_server.url.removeprefix("redis://").split("/")[0].split(":")
    link = HeldSubscribes(host, int(port))
    try:
        api = await api_factory(redis_url=await link.start())
        hub = api.runtime.hub
        store = await api.store()
        customer = await api.customer()
        first = (await api.place_order(customer, store))["id"]
        second = (await api.place_order(customer, store))["id"]
        principal = Principal(user_id=customer.id, role=Role.STUDENT, store_id=None, name="Asha Rao", expires_at=4e9)
        reader, joiner = (Subscriber(principal, 64, frames.order_event, frames.snapshot) for _ in range(2))

        link.hold()
        # The reader announces its read of both orders and waits for the first one's channel.
        reading = asyncio.create_task(hub.subscribe_orders(reader, [first, second]))
        await until(lambda: link.holds(f"order:{first}"), message="the first channel's SUBSCRIBE")
        # The joiner takes its state from that read, but is the first watcher of the second
        # order's channel: its SUBSCRIBE is the one in flight.
        joining = asyncio.create_task(hub.subscribe_orders(joiner, [second]))
        await until(lambda: link.holds(f"order:{second}"), message="the second channel's SUBSCRIBE")
        link.release(1)  # Redis confirms the first channel only
        done, _ = await asyncio.wait({reading}, timeout=1.0)
        assert not done, "the subscribe answered before Redis confirmed the second order's channel"

        # A change of the second order while Redis does not yet send its channel to this process.
        await api.advance(store, second, "paid")
        link.open()
        reader.send_snapshot(await asyncio.wait_for(reading, 10))
        joiner.send_snapshot(await asyncio.wait_for(joining, 10))
        assert version_seen(reader, second) == 2
        assert version_seen(joiner, second) == 2
        for subscriber in (reader, joiner):
            await hub.detach(subscriber)
    finally:
        await link.close()


async def test_a_page_following_a_store_reads_its_state_only_once_redis_confirmed_the_store_channel(redis_server):
    """The pickup boards' and menus' watchers (server/realtime/latest.py) share a store's channel the
    same way: a second page's first state is read only once the first page's subscription is live."""
    host, port = redis_server.url.removeprefix("redis://").split("/")[0].split(":")
    link = HeldSubscribes(host, int(port))
    broker = Broker(await link.start(), liveness=10)
    await broker.connect()
    watchers: StoreWatchers[StoreWatcher] = StoreWatchers(broker, lambda store_id: (f"board:{store_id}",),
                                                         lambda channel, payload: None)
    reads: list[str] = []

    def reading(name: str):
        async def read() -> str:
            reads.append(name)
            return name
        return read

    try:
        link.hold()
        first = asyncio.create_task(watchers.add(StoreWatcher("s1"), reading("first")))
        await until(lambda: link.holds("board:s1"), message="the store channel's SUBSCRIBE")
        second = asyncio.create_task(watchers.add(StoreWatcher("s1"), reading("second")))
        done, _ = await asyncio.wait({second}, timeout=1.0)
        assert not done and reads == [], "a page read the store's state before Redis confirmed its channel"
        link.open()
        assert await asyncio.wait_for(first, 10) == "first"
        assert await asyncio.wait_for(second, 10) == "second"
    finally:
        await broker.disconnect()
        await link.close()
