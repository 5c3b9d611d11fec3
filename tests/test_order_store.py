"""The order store keeps MongoDB's semantics on the suite's engine (nx-27017), for each difference
of the engine the store relies on (README, *Embedded MongoDB*): each test asserts what MongoDB
would return, through the store."""

from __future__ import annotations

from datetime import datetime, timedelta

from bson import ObjectId

from server.domain.lifecycle import ACTIVE, OrderStatus
from server.services import order_store
from tests.deadline_helpers import no_show

MS = timedelta(milliseconds=1)


async def _stored(order_id: str):
    order = await order_store.get(order_id)
    assert order is not None
    return order


async def test_dates_written_by_a_change_read_back_as_dates(api):
    # nx-27017 returns a date written by `$set` as a string; MongoDB returns the date.
    store = await api.store()
    order = await api.place_order(await api.customer(), store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    ready_at = (await _stored(order["id"])).ready_at
    [row] = await order_store.board_rows(store.id, [OrderStatus.READY.value])
    assert isinstance(row["ready_at"], datetime) and row["ready_at"] == ready_at


async def test_date_ranges_are_decided_to_the_millisecond(api):
    # nx-27017 compares dates to the whole second; MongoDB to the millisecond.
    store = await api.store()
    order = await api.place_order(await api.customer(), store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    stored = await _stored(order["id"])
    created, ready = stored.created_at, stored.ready_at
    assert ready is not None
    placed = await order_store.get((await api.place_order(await api.customer(), await api.store()))["id"])
    assert placed is not None and placed.next_deadline_at is not None
    due_at = placed.next_deadline_at
    assert [row["_id"] for row in await order_store.due(due_at, 10, placed.id)] == [placed.id]
    assert await order_store.due(due_at - MS, 10, placed.id) == []
    [finished] = await order_store.recently_ready(store.id, ready, 10)
    assert finished["_id"] == stored.id and finished["ready_at"] == ready and finished["version"] == stored.version
    assert await order_store.recently_ready(store.id, ready + MS, 10) == []
    assert [row["_id"] async for row in _day(store.id, created, created + MS)] == [stored.id]
    assert [row["_id"] async for row in _day(store.id, created + MS, created + timedelta(hours=1))] == []
    assert [row["_id"] async for row in _day(store.id, created - timedelta(hours=1), created)] == []


async def _day(store_id: str, start: datetime, end: datetime):
    for row in await order_store.store_day(store_id, start, end, {"order_status": 1}):
        yield row


async def test_the_outbox_relays_marks_older_than_its_cutoff_to_the_millisecond(api_factory, clock):
    api = await api_factory(clock=clock)  # the relay's own cutoff stands still
    store = await api.store()
    order = await api.place_order(await api.customer(), store)
    stored = await _stored(order["id"])
    await order_store.change(stored, {"$set": {"outbox_at": stored.created_at},
                                   "$inc": {"version": 1}})
    assert stored.id in {o.id for o in await order_store.stale_outbox(stored.created_at, 500)}
    assert stored.id not in {o.id for o in await order_store.stale_outbox(stored.created_at - MS, 500)}


async def test_no_shows_are_counted_by_presence_not_by_null(api_factory, clock):
    # nx-27017's `{field: null}` differs from MongoDB's (which also matches absent fields): the store
    # asks with `$exists`, the same on both.
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    await api.place_order(customer, store)
    assert await order_store.no_show_standing(customer.id) == (0, None)
    missed = await no_show(api, store, customer, clock)
    count, last = await order_store.no_show_standing(customer.id)
    assert count == 1 and last == (await _stored(missed["id"])).no_show_at
    assert [str(o.id) for o in await order_store.no_shows_of(customer.id)] == [missed["id"]]


async def test_references_are_matched_as_stored(api):
    # nx-27017 matches an ObjectId only in `_id`; references are hex strings, matched by both.
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    assert [str(o.id) for o in await order_store.in_statuses({"user_id": customer.id}, ACTIVE)] == [order["id"]]
    assert [str(o.id) for o in await order_store.in_statuses({"store_id": store.id}, ACTIVE)] == [order["id"]]
    assert [str(o.id) for o in await order_store.by_ids([order["id"], "not-an-id", str(ObjectId())])] == [order["id"]]


async def test_orders_without_a_transaction_id_do_not_collide_and_a_taken_one_is_found(api):
    # No partial unique index (nx-27017 drops the filter): a transaction id is claimed in
    # `transaction_ids`, which orders without one never touch; its own checkout does not count it taken.
    store = await api.store()
    customer = await api.customer()
    first = await api.place_order(customer, store)
    await api.place_order(customer, store)
    assert not await order_store.transaction_taken("UPI123456789")
    response = await api.patch(f"/api/orders/{first['id']}/payment-status", store.staff,
                               json={"paymentStatus": "success", "transactionId": "UPI123456789"})
    assert response.status_code == 200, response.text
    assert await order_store.transaction_taken("UPI123456789")
    paid = await _stored(first["id"])
    assert not await order_store.transaction_taken("UPI123456789", checkout=(paid.store_id, paid.checkout_id))


async def test_the_next_deadline_is_a_date(api):
    # nx-27017's `$min` of dates in `$group` returns a string; the store's sorted find returns the date.
    store = await api.store()
    order = await api.place_order(await api.customer(), store)
    deadline = (await _stored(order["id"])).next_deadline_at
    assert deadline is not None
    assert await order_store.next_deadline_after(deadline - MS) == deadline
    assert await order_store.next_deadline_after(deadline) is None


async def test_many_compare_and_sets_go_in_bounded_batches_and_a_concurrent_change_is_told_apart(api, monkeypatch):
    # One command per batch, so a store closing that moves thousands of deadlines never holds the
    # engine for all of them at once; each batch reports the orders it found one version on.
    monkeypatch.setattr(order_store, "CHANGE_BATCH", 2)
    store = await api.store()
    orders = [await _stored((await api.place_order(await api.customer(), store))["id"]) for _ in range(5)]
    raced = orders[3]
    await api.advance(store, str(raced.id), "paid")  # a change the batch's compare-and-set did not expect
    changed = await order_store.change_many([(order, {"$set": {"store_location": "Counter 2"}, "$inc": {"version": 1}})
                                             for order in orders])
    # Every order is one version past the expected one; the raced one by the other change, which
    # the caller tells apart by what it wrote.
    assert sorted(str(o.id) for o in changed) == sorted(str(o.id) for o in orders)
    assert [o.store_location == "Counter 2" for o in sorted(changed, key=lambda o: str(o.id))] == [
        o.id != raced.id for o in sorted(orders, key=lambda o: str(o.id))]
