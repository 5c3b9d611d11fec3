"""The broker's reference counting, without a server: the engine is asked to subscribe a channel
for its first listener only and to unsubscribe it after its last, whatever order listeners come
and go in."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from server.realtime.backends.base import BrokerBackend, ConnectionChanged, Deliver
from server.realtime.broker import Broker


class RecordingBackend(BrokerBackend):
    """An engine that records what the broker asks of it and delivers what it is given."""

    def __init__(self, fail_subscribe: bool = False, fail_unsubscribe: bool = False) -> None:
        self.calls: list[tuple[str, str]] = []
        self.fail_subscribe, self.fail_unsubscribe = fail_subscribe, fail_unsubscribe
        self.deliver: Deliver | None = None
        self.connection_changed: ConnectionChanged | None = None

    async def connect(self, deliver: Deliver, connection_changed: ConnectionChanged) -> None:
        self.deliver, self.connection_changed = deliver, connection_changed

    async def disconnect(self) -> None:
        self.calls.append(("disconnect", ""))

    async def subscribe(self, channel: str) -> None:
        await asyncio.sleep(0)  # yield, so concurrent subscribers really interleave
        if self.fail_subscribe:
            raise ConnectionError("engine down")
        self.calls.append(("subscribe", channel))

    async def unsubscribe(self, channel: str) -> None:
        await asyncio.sleep(0)
        if self.fail_unsubscribe:
            raise ConnectionError("engine down")
        self.calls.append(("unsubscribe", channel))

    async def publish(self, channels: Sequence[str], payload: bytes) -> None:
        for channel in channels:
            self.deliver(channel, payload)

    async def ping(self) -> bool:
        return True


def listener(received: list):
    return lambda channel, payload: received.append((channel, payload))


@pytest.fixture
async def connected():
    backend = RecordingBackend()
    broker = Broker(backend=backend)
    await broker.connect()
    return broker, backend


async def test_the_engine_subscribes_a_channel_once_for_its_first_listener(connected):
    broker, backend = connected
    first, second = listener([]), listener([])
    await broker.subscribe("order:1", first)
    await broker.subscribe("order:1", second)
    assert backend.calls == [("subscribe", "order:1")]


async def test_the_engine_unsubscribes_only_after_the_last_listener_leaves(connected):
    broker, backend = connected
    first, second = listener([]), listener([])
    await broker.subscribe("order:1", first)
    await broker.subscribe("order:1", second)
    await broker.unsubscribe("order:1", first)
    assert ("unsubscribe", "order:1") not in backend.calls
    await broker.unsubscribe("order:1", second)
    assert backend.calls == [("subscribe", "order:1"), ("unsubscribe", "order:1")]


async def test_concurrent_subscribers_of_one_channel_make_one_engine_subscription(connected):
    broker, backend = connected
    listeners = [listener([]) for _ in range(20)]
    await asyncio.gather(*(broker.subscribe("store:9", each) for each in listeners))
    assert backend.calls == [("subscribe", "store:9")]
    await asyncio.gather(*(broker.unsubscribe("store:9", each) for each in listeners))
    assert backend.calls == [("subscribe", "store:9"), ("unsubscribe", "store:9")]


async def test_a_listener_that_never_subscribed_or_left_twice_changes_nothing(connected):
    broker, backend = connected
    member, stranger = listener([]), listener([])
    await broker.subscribe("order:1", member)
    await broker.unsubscribe("order:1", stranger)
    await broker.unsubscribe("order:2", stranger)
    assert backend.calls == [("subscribe", "order:1")]
    await broker.unsubscribe("order:1", member)
    await broker.unsubscribe("order:1", member)
    assert backend.calls == [("subscribe", "order:1"), ("unsubscribe", "order:1")]


async def test_a_message_reaches_every_listener_of_its_channel_and_no_other(connected):
    broker, _ = connected
    on_one, also_on_one, on_two = [], [], []
    await broker.subscribe("order:1", listener(on_one))
    await broker.subscribe("order:1", listener(also_on_one))
    await broker.subscribe("order:2", listener(on_two))
    await broker.publish(["order:1"], b"changed")
    assert on_one == also_on_one == [("order:1", b"changed")]
    assert on_two == []


async def test_a_failing_listener_does_not_stop_the_others(connected):
    broker, _ = connected
    received = []

    def broken(channel, payload):
        raise RuntimeError("listener bug")

    await broker.subscribe("order:1", broken)
    await broker.subscribe("order:1", listener(received))
    await broker.publish(["order:1"], b"changed")
    assert received == [("order:1", b"changed")]


async def test_a_refused_engine_subscription_leaves_no_listener_behind():
    backend = RecordingBackend(fail_subscribe=True)
    broker = Broker(backend=backend)
    await broker.connect()
    received = []
    with pytest.raises(ConnectionError):
        await broker.subscribe("order:1", listener(received))
    backend.fail_subscribe = False
    await broker.subscribe("order:1", listener(received))  # the next first listener asks again
    assert backend.calls == [("subscribe", "order:1")]


async def test_a_failed_engine_unsubscribe_still_forgets_the_channel_locally():
    backend = RecordingBackend(fail_unsubscribe=True)
    broker = Broker(backend=backend)
    await broker.connect()
    received = []
    each = listener(received)
    await broker.subscribe("order:1", each)
    await broker.unsubscribe("order:1", each)
    backend.deliver("order:1", b"late")
    assert received == []
    backend.fail_unsubscribe = False
    await broker.subscribe("order:1", each)  # subscribed again from scratch
    assert backend.calls == [("subscribe", "order:1"), ("subscribe", "order:1")]


async def test_connection_listeners_hear_each_change_even_if_one_fails(connected):
    broker, backend = connected
    heard = []

    def broken(connected_now):
        raise RuntimeError("listener bug")

    broker.on_connection_change(broken)
    broker.on_connection_change(heard.append)
    backend.connection_changed(False)
    assert broker.connected is False
    backend.connection_changed(True)
    assert broker.connected is True
    assert heard == [False, True]
