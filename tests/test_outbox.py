"""The outbox: every change carries a mark until it is published; orphaned marks are relayed."""

from __future__ import annotations

from server.models import Order
from server.services import order_store
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


async def test_marks_are_cleared_in_small_batches_and_a_newer_changes_mark_stays(api_factory, clock, monkeypatch):
    # Each batch is one command; the engine serves a command whole, so small batches keep a
    # request that arrives meanwhile from waiting for every mark of the pass.
    monkeypatch.setattr(order_store, "MARKS_BATCH", 2)
    api = await api_factory(clock=clock)  # the relay's cutoff stands still: no mark here turns stale
    store = await api.store()
    customer = await api.customer()
    placed = [await api.place_order(customer, store) for _ in range(5)]
    # Their own publishing clears their marks in the background: let it end first, or a late clear
    # would take away a mark set below.
    for order in placed:
        await until(lambda: _not(marked(order["orderNumber"])), message="the placement's mark to be cleared")
    orders = [await order_store.get(order["id"]) for order in placed]
    collection = Order.get_pymongo_collection()
    for order in orders:  # marked again at the version each was published at
        await collection.update_one({"_id": order.id}, {"$set": {"outbox_at": clock.now()}})
    # The first has since changed again (a newer version, its own mark not yet published).
    await collection.update_one({"_id": orders[0].id}, {"$inc": {"version": 1}})
    await order_store.clear_outbox_marks({order.id: (order.store_id, order.version) for order in orders})
    assert [await marked(order["orderNumber"]) for order in placed] == [True, False, False, False, False]


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
