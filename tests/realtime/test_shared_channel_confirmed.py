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


# --- a subscribe cancelled before Redis was asked -----------------------------------------------
# A subscribe waits for the broker connection's command lock (held by another command, or by the
# re-subscription after a reconnect) before its SUBSCRIBE is written. Cancelled there (its caller
# gone), it used to leave its listener counted for a channel Redis was never asked for, so every
# later listener of that channel in the process took the channel as listened to and heard nothing.
# Here the test holds the command lock itself, which is exactly that wait.

async def test_a_first_subscribe_cancelled_before_redis_was_asked_leaves_the_channel_to_the_next(redis_server):
    broker = Broker(redis_server.url, liveness=10)
    await broker.connect()
    heard: list[bytes] = []
    commands = broker._backend._commands
    try:
        await commands.acquire()
        try:
            gone = asyncio.create_task(broker.subscribe("order:c1", lambda channel, payload: None))
            await until(lambda: "order:c1" in broker._listeners, message="the subscribe to wait for the command lock")
            gone.cancel()
            await asyncio.gather(gone, return_exceptions=True)
        finally:
            commands.release()
        await broker.subscribe("order:c1", lambda channel, payload: heard.append(payload))
        await broker.publish(["order:c1"], b"a change")
        await until(lambda: heard == [b"a change"], message="the next listener to hear the channel")
    finally:
        await broker.disconnect()


async def test_a_watcher_waiting_for_a_cancelled_subscribe_asks_for_the_channel_itself(api_factory, redis_server):
    api = await api_factory(redis_url=redis_server.url)
    hub = api.runtime.hub
    store = await api.store()
    customer = await api.customer()
    order = (await api.place_order(customer, store))["id"]
    principal = Principal(user_id=customer.id, role=Role.STUDENT, store_id=None, name="Asha Rao", expires_at=4e9)
    gone, joiner = (Subscriber(principal, 64, frames.order_event, frames.snapshot) for _ in range(2))
    commands = api.runtime.broker._backend._commands
    await commands.acquire()
    try:
        leaving = asyncio.create_task(hub.subscribe_orders(gone, [order]))
        await until(lambda: hub._listens.asking(f"order:{order}"), message="the first subscribe to ask for the channel")
        joining = asyncio.create_task(hub.subscribe_orders(joiner, [order]))
        await until(lambda: joiner in hub._order_watchers.get(order, ()), message="the second to wait for it")
        leaving.cancel()
        await asyncio.gather(leaving, return_exceptions=True)
        assert gone not in hub._order_watchers.get(order, ())
    finally:
        commands.release()
    joiner.send_snapshot(await asyncio.wait_for(joining, 10))
    await api.advance(store, order, "paid")
    await until(lambda: version_seen(joiner, order) == 2, message="the joiner to hear the order's change")
    await hub.detach(joiner)


async def test_a_page_waiting_for_a_cancelled_store_subscription_asks_for_it_itself(redis_server):
    broker = Broker(redis_server.url, liveness=10)
    await broker.connect()
    heard: list[bytes] = []
    watchers: StoreWatchers[StoreWatcher] = StoreWatchers(
        broker, lambda store_id: (f"board:{store_id}", f"menu:{store_id}"), lambda channel, payload: heard.append(payload))

    async def read() -> str:
        return "state"

    commands = broker._backend._commands
    try:
        await commands.acquire()
        try:
            leaving = asyncio.create_task(watchers.add(StoreWatcher("s2"), read))
            await until(lambda: "board:s2" in broker._listeners, message="the first page to ask for the store")
            staying = asyncio.create_task(watchers.add(StoreWatcher("s2"), read))
            await until(lambda: len(watchers.of("s2")) == 2, message="the second page to wait for the first's")
            leaving.cancel()
            await asyncio.gather(leaving, return_exceptions=True)
        finally:
            commands.release()
        assert await asyncio.wait_for(staying, 10) == "state"
        await broker.publish(["board:s2"], b"board")
        await broker.publish(["menu:s2"], b"menu")
        await until(lambda: sorted(heard) == [b"board", b"menu"], message="the page to hear both store channels")
        assert [len(broker._listeners[channel]) for channel in ("board:s2", "menu:s2")] == [1, 1]
    finally:
        await broker.disconnect()
