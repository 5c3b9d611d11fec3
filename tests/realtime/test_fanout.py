"""The hub's fan-out inside one process (in-process app, memory broker): one serialisation per
event, per-order coalescing in a bounded queue, and a fresh snapshot after an overflow."""

from __future__ import annotations

import orjson
from prometheus_client import REGISTRY

from server.realtime import frames
from server.realtime.client import Subscriber
from tests.support import Api, until


def counter(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


async def subscriber_for(api: Api, token: str, queue_size: int = 256) -> Subscriber:
    principal = await api.runtime.accounts.authenticate(token)
    subscriber = Subscriber(principal, queue_size, frames.order_event, frames.snapshot)
    api.runtime.hub.attach(subscriber)
    return subscriber


async def watch(api: Api, subscriber: Subscriber, *, store_id: str | None = None,
                order_ids: list[str] | None = None) -> dict:
    """Subscribe the way `/ws` does, and take the snapshot off the queue."""
    hub = api.runtime.hub
    entries = await (hub.subscribe_store(subscriber, store_id) if store_id
                     else hub.subscribe_orders(subscriber, order_ids or []))
    subscriber.send_snapshot(entries)
    snapshot = orjson.loads(await subscriber.next_frame(timeout=2))
    assert snapshot["type"] == "snapshot"
    return snapshot


async def test_an_event_is_serialised_once_for_every_socket_that_receives_it(api: Api):
    store = await api.store()
    customer = await api.customer()
    staff = [await subscriber_for(api, store.staff.access_token) for _ in range(3)]
    for subscriber in staff:
        await watch(api, subscriber, store_id=store.id)
    order = await api.place_order(customer, store)
    owners = [await subscriber_for(api, customer.access_token) for _ in range(2)]
    for subscriber in owners:
        await watch(api, subscriber, order_ids=[order["id"]])

    frames = [await s.next_frame(timeout=2) for s in staff]
    assert all(frame is frames[0] for frame in frames)  # the same str object: encoded once
    assert orjson.loads(frames[0])["event"] == "created"

    await api.advance(store, order["id"], "paid")
    staff_frames = [await s.next_frame(timeout=2) for s in staff]
    owner_frames = [await s.next_frame(timeout=2) for s in owners]
    assert all(frame is staff_frames[0] for frame in staff_frames)
    assert all(frame is owner_frames[0] for frame in owner_frames)
    assert "specialInstructions" in orjson.loads(staff_frames[0])["order"]
    assert "specialInstructions" not in orjson.loads(owner_frames[0])["order"]
    for subscriber in staff + owners:
        await api.runtime.hub.detach(subscriber)


async def test_a_socket_that_falls_behind_gets_only_the_newest_state_of_each_order(api: Api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    slow = await subscriber_for(api, customer.access_token)
    await watch(api, slow, order_ids=[order["id"]])
    coalesced = counter("orderpulse_events_coalesced_total")

    await api.advance(store, order["id"], "paid", "processing", "ready")  # nobody reads meanwhile
    assert counter("orderpulse_events_coalesced_total") - coalesced == 2
    frame = orjson.loads(await slow.next_frame(timeout=2))
    assert (frame["version"], frame["order"]["orderStatus"]) == (4, "ready")
    assert slow.queue_empty
    await api.runtime.hub.detach(slow)


async def test_a_full_queue_drops_and_the_socket_gets_a_fresh_snapshot_once_it_catches_up(api_factory):
    api = await api_factory(ws_stall_close_seconds=1)
    store = await api.store()
    customer = await api.customer()
    slow = await subscriber_for(api, store.staff.access_token, queue_size=8)
    await watch(api, slow, store_id=store.id)
    dropped = counter("orderpulse_events_dropped_total")
    orders = [await api.place_order(customer, store) for _ in range(12)]  # 12 distinct orders, room for 8
    assert counter("orderpulse_events_dropped_total") - dropped == 4
    assert slow.needs_snapshot

    received = [orjson.loads(await slow.next_frame(timeout=2)) for _ in range(8)]
    assert [f["order"]["id"] for f in received] == [o["id"] for o in orders[:8]]
    snapshot = orjson.loads(await until(lambda: slow.next_frame(timeout=0.05), timeout=5,
                                        message="the resync snapshot"))
    assert snapshot["type"] == "snapshot"
    assert {o["id"] for o in snapshot["orders"]} == {o["id"] for o in orders}
    assert not slow.needs_snapshot
    await api.runtime.hub.detach(slow)


async def test_an_event_that_lands_while_a_snapshot_is_read_follows_the_snapshot(api: Api, monkeypatch):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    read_board = api.runtime.subscriptions.store_board

    async def board_then_a_change(store_id: str):
        board = await read_board(store_id)
        await api.advance(store, order["id"], "paid")  # published after the read, before the snapshot goes out
        return board

    monkeypatch.setattr(api.runtime.subscriptions, "store_board", board_then_a_change)
    staff = await subscriber_for(api, store.staff.access_token)
    snapshot = await watch(api, staff, store_id=store.id)  # asserts the snapshot comes first
    assert [o["version"] for o in snapshot["orders"]] == [1]
    event = orjson.loads(await staff.next_frame(timeout=2))
    assert (event["type"], event["version"]) == ("order", 2)
    await api.runtime.hub.detach(staff)
