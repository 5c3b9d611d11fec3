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
from tests.support import until


class HeldSubscribes:
    """A TCP relay to Redis that can hold what the broker's listener connection sends (the one that
    subscribes) and let it through chunk by chunk; every other connection, and every answer, passes."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.server: asyncio.Server | None = None
        self.holding = False
        self.held: list[tuple[asyncio.StreamWriter, bytes]] = []
        self.tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    def holds(self, text: str) -> bool:
        return any(text.encode() in chunk for _, chunk in self.held)

    def hold(self) -> None:
        self.holding = True

    def release(self, count: int) -> None:
        """Let the first `count` held chunks through, in order; keep holding the rest."""
        for target, chunk in self.held[:count]:
            target.write(chunk)
        del self.held[:count]

    def open(self) -> None:
        self.holding = False
        self.release(len(self.held))

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self.host, self.port)
        for pipe in (self._commands(reader, upstream_writer), self._pipe(upstream_reader, writer)):
            task = asyncio.create_task(pipe)
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    async def _commands(self, source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        listener = False
        while chunk := await source.read(65536):
            listener = listener or b"SUBSCRIBE" in chunk.upper()
            if listener and (self.holding or self.held):
                self.held.append((target, chunk))
            else:
                target.write(chunk)
        target.close()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, target: asyncio.StreamWriter) -> None:
        while chunk := await source.read(65536):
            target.write(chunk)
        target.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


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
