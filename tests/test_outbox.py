"""The outbox: every change carries a mark until it is published; orphaned marks are relayed."""

from __future__ import annotations

from server.models import Order
from server.services.changes import ChangeMessage, order_channel
from tests.support import until


async def marked(order_number: str) -> bool:
    document = await Order.get_pymongo_collection().find_one({"order_number": order_number}, {"outbox_at": 1})
    return "outbox_at" in document


async def test_published_changes_lose_their_mark(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    await until(lambda: _not(marked(order["orderNumber"])), message="the mark to be cleared")


async def test_an_orphaned_mark_is_republished_and_cleared(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await until(lambda: _not(marked(order["orderNumber"])), message="the mark to be cleared")
    # A writer that died between its write and its publish leaves exactly this behind.
    await Order.get_pymongo_collection().update_one(
        {"order_number": order["orderNumber"]}, {"$set": {"outbox_at": clock.now()}})
    received: list[ChangeMessage] = []
    await api.runtime.broker.subscribe(order_channel(order["id"]),
                                       lambda channel, payload: received.append(ChangeMessage.decode(payload)))
    clock.advance(api.runtime.settings.outbox_relay_after_seconds)  # the mark is now stale: the relay's next look
    await until(lambda: received, message="the relayed event")
    assert (received[0].order_id, received[0].version, received[0].event) == (order["id"], 1, "created")
    await until(lambda: _not(marked(order["orderNumber"])), message="the mark to be cleared")


async def _not(awaitable) -> bool:
    return not await awaitable
