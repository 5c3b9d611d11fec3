"""A store's closing time for payments (issue 22): set through `PATCH /api/stores/{id}/pace`, it
refuses orders from then on, moves every unpaid order's payment deadline to it, and the enforcer
cancels those orders at the closing, on a clock the tests move by hand."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from server.domain.clock import as_utc, iso_z, parse_iso
from server.models import Order
from server.services import deadlines, order_store
from server.services.deadlines import DeadlineEnforcer
from tests.deadline_helpers import cancelled_by_enforcer

CLOSED = "This store has closed for new orders. Please try again once it reopens."


async def close_at(api, store, closes_at, actor=None):
    return await api.patch(f"/api/stores/{store.id}/pace", actor or store.staff,
                           json={"closesAt": closes_at if closes_at is None else iso_z(closes_at)})


async def test_closing_moves_unpaid_deadlines_and_the_enforcer_cancels_at_it(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    unpaid = await api.place_order(customer, store)
    paid = await api.place_order(customer, store)
    await api.advance(store, paid["id"], "paid")
    moved: list[Order] = []
    api.runtime.publisher.watch(lambda order: moved.append(order) if order.payment_due_by else None)
    closes_at = clock.now() + timedelta(seconds=60)
    response = await close_at(api, store, closes_at)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["closesAt"] == iso_z(closes_at)
    stored = await Order.get(unpaid["id"])
    assert stored is not None and as_utc(stored.next_deadline_at) == closes_at and stored.version == 2
    assert [str(order.id) for order in moved] == [unpaid["id"]]  # one event, for the order whose deadline moved
    assert (await Order.get(paid["id"])).payment_due_by is None
    clock.advance(59.999)
    assert await api.runtime.enforcer.enforce_due() == 0  # not a millisecond early
    clock.advance(0.001)
    data = await cancelled_by_enforcer(api, customer, unpaid["id"])
    assert (data["cancellationReason"], parse_iso(data["cancelledAt"])) == ("payment_timeout", closes_at)
    assert (await api.get(f"/api/orders/{paid['id']}", customer)).json()["data"]["orderStatus"] == "accepted"


async def test_orders_are_refused_from_the_closing_until_it_reopens(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    closes_at = clock.now() + timedelta(seconds=30)
    assert (await close_at(api, store, closes_at)).status_code == 200
    before = await api.place_order(customer, store)  # still open: due by the closing at the latest
    assert as_utc((await Order.get(before["id"])).next_deadline_at) == closes_at
    early_token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    clock.advance(30)
    response = await api.checkout(customer, store)
    assert (response.status_code, response.json()["message"]) == (400, CLOSED)
    response = await api.post("/api/orders", customer, json={"checkoutToken": early_token})
    assert (response.status_code, response.json()["message"]) == (409, CLOSED)
    response = await close_at(api, store, None)
    assert (response.status_code, response.json()["data"]["closesAt"]) == (200, None)
    assert (await api.checkout(customer, store)).status_code == 200


async def test_another_stores_staff_and_customers_cannot_close_a_store(api_factory, clock):
    api = await api_factory(clock=clock)
    store, other = await api.store(), await api.store()
    customer = await api.customer()
    closes_at = clock.now() + timedelta(minutes=5)
    for actor in (other.staff, customer):
        response = await close_at(api, store, closes_at, actor)
        assert response.status_code == 403, response.text
    assert (await api.get(f"/api/stores/{store.id}")).json()["data"]["closesAt"] is None
    admin = await api.admin()
    assert (await close_at(api, store, closes_at, admin)).status_code == 200


async def test_a_bad_closing_is_refused_and_changes_nothing(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    order = await api.place_order(await api.customer(), store)
    deadline = (await Order.get(order["id"])).next_deadline_at
    now = clock.now()
    format_message = ("closesAt must be a date and time with its time zone, e.g. 2030-01-02T18:30:00Z, "
                      "or null to reopen.")
    range_message = "closesAt must be in the future and at most 24 hours from now."
    for value, message in (("tomorrow", format_message), ("2030-01-02T18:30:00", format_message),
                           (1893456000, format_message), (True, format_message),
                           (iso_z(now), range_message), (iso_z(now - timedelta(minutes=1)), range_message),
                           (iso_z(now + timedelta(hours=24, milliseconds=1)), range_message)):
        response = await api.patch(f"/api/stores/{store.id}/pace", store.staff,
                                   json={"closesAt": value, "delayMinutes": 10})
        assert (response.status_code, response.json()["message"]) == (400, message), value
    shown = (await api.get(f"/api/stores/{store.id}")).json()["data"]
    assert (shown["closesAt"], shown["delayMinutes"]) == (None, 0)
    stored = await Order.get(order["id"])
    assert (stored.next_deadline_at, stored.version) == (deadline, 1)


async def test_two_enforcers_claim_each_due_order_once_in_bounded_batches(api_factory, clock):
    api = await api_factory(clock=clock)
    second = await api_factory(clock=clock)  # same database: a second process
    for runtime in (api.runtime, second.runtime):
        await runtime.enforcer.stop()  # the test runs the passes itself, all at once
    store = await api.store()
    customer = await api.customer()
    orders = [await api.place_order(customer, store) for _ in range(7)]
    assert (await close_at(api, store, clock.now() + timedelta(seconds=10))).status_code == 200
    cancelled: list[str] = []
    enforcers = []
    for runtime in (api.runtime, second.runtime):
        runtime.publisher.watch(lambda order: cancelled.append(str(order.id))
                                if order.order_status == "cancelled" else None)
        enforcers.append(DeadlineEnforcer(runtime.settings, runtime.publisher, clock=clock, batch_size=2))
    clock.advance(10)
    counts = await asyncio.gather(*(enforcer.enforce_due() for enforcer in enforcers * 2))
    assert sum(counts) == 7
    assert sorted(cancelled) == sorted(order["id"] for order in orders)  # one event per order
    stored = await Order.find({"store_id": store.id}).to_list()
    assert all(o.order_status == "cancelled" and o.version == 3 for o in stored)  # placed, moved, cancelled


async def closing_now_due(api_factory, clock, count: int):
    """An app whose own enforcer and relay are stopped (the test runs their passes), a store whose
    `count` unpaid orders fall due at its closing, and the clock moved to that closing; with the
    ids of the cancellation events its publisher sends, in the order sent."""
    api = await api_factory(clock=clock)
    await api.runtime.enforcer.stop()
    await api.runtime.relay.stop()
    store = await api.store()
    customer = await api.customer()
    orders = [await api.place_order(customer, store) for _ in range(count)]
    assert (await close_at(api, store, clock.now() + timedelta(seconds=10))).status_code == 200
    cancelled: list[str] = []
    api.runtime.publisher.watch(lambda order: cancelled.append(str(order.id))
                                if order.order_status == "cancelled" else None)
    clock.advance(10)
    return api, store, customer, orders, cancelled


async def test_a_batch_whose_pass_dies_after_its_claim_is_published_by_the_relay(api_factory, clock, monkeypatch):
    """The enforcer records each batch before claiming it and removes the record once its events
    are out; a record older than the relay's cutoff names a pass that died in between, and the
    relay publishes that batch's orders, once each. No cancelled order carries an outbox mark."""
    api, store, _, orders, cancelled = await closing_now_due(api_factory, clock, 3)
    batches = Order.get_pymongo_collection().database["deadline_batches"]

    async def dies(*args, **kwargs):
        raise RuntimeError("the process died after its claim")

    monkeypatch.setattr(deadlines, "publish_deadline_batch", dies)
    enforcer = DeadlineEnforcer(api.runtime.settings, api.runtime.publisher, clock=clock)
    with pytest.raises(RuntimeError):
        await enforcer.enforce_due()
    stored = await Order.find({"store_id": store.id}).to_list()
    assert all(o.order_status == "cancelled" for o in stored) and cancelled == []
    assert await batches.count_documents({}) == 1

    clock.advance(0.5)  # younger than the relay's cutoff (a second): the pass may still be publishing
    await api.runtime.relay.relay_once()
    assert cancelled == []
    clock.advance(1)
    await api.runtime.relay.relay_once()
    assert sorted(cancelled) == sorted(order["id"] for order in orders)  # one event per order
    assert await batches.count_documents({}) == 0
    await api.runtime.relay.relay_once()
    assert len(cancelled) == 3
    marked = await Order.get_pymongo_collection().count_documents({"store_id": store.id, "outbox_at": {"$exists": True}})
    assert marked == 0


async def test_a_pass_leaves_no_batch_record_and_no_outbox_mark(api_factory, clock):
    api, store, _, _, _ = await closing_now_due(api_factory, clock, 5)
    enforcer = DeadlineEnforcer(api.runtime.settings, api.runtime.publisher, clock=clock, batch_size=2)
    assert await enforcer.enforce_due() == 5
    collection = Order.get_pymongo_collection()
    assert await collection.database["deadline_batches"].count_documents({}) == 0
    assert await collection.count_documents({"store_id": store.id, "outbox_at": {"$exists": True}}) == 0


async def test_a_pass_reads_the_due_orders_once_for_many_batches_and_again_past_its_cap(api_factory, clock, monkeypatch):
    """The embedded engine scans every match of a range read, so a closing's thousands of due
    orders are read once for up to PASS_BATCHES batches, not once per batch."""
    api, store, customer, orders, _ = await closing_now_due(api_factory, clock, 7)
    reads: list[int] = []
    due = order_store.due

    async def counted(*args, **kwargs):
        rows = await due(*args, **kwargs)
        reads.append(len(rows))
        return rows

    monkeypatch.setattr(order_store, "due", counted)
    enforcer = DeadlineEnforcer(api.runtime.settings, api.runtime.publisher, clock=clock, batch_size=2)
    assert await enforcer.enforce_due() == 7
    assert reads == [7]  # four batches of one read

    assert (await close_at(api, store, None)).status_code == 200  # open again
    more = [await api.place_order(customer, store) for _ in range(7)]
    assert (await close_at(api, store, clock.now() + timedelta(seconds=10))).status_code == 200
    clock.advance(10)
    reads.clear()
    monkeypatch.setattr(deadlines, "PASS_BATCHES", 2)  # a read feeds two batches of two
    assert await enforcer.enforce_due() == 7
    assert reads == [4, 3]
    stored = await Order.find({"store_id": store.id}).to_list()
    assert {str(o.id) for o in stored if o.order_status == "cancelled"} == {o["id"] for o in orders + more}


async def test_a_batch_whose_claim_was_not_seen_to_end_waits_a_minute_for_the_relay(api_factory, clock, monkeypatch):
    """A record whose claim never reported its end may belong to a claim still being written: the
    relay leaves it for a minute (a claim takes well under a second), then publishes what it claimed."""
    api, _, _, orders, cancelled = await closing_now_due(api_factory, clock, 2)

    async def dies(*args, **kwargs):
        raise RuntimeError("the process died as its claim ended")

    monkeypatch.setattr(order_store, "deadline_batch_claimed", dies)
    with pytest.raises(RuntimeError):
        await DeadlineEnforcer(api.runtime.settings, api.runtime.publisher, clock=clock).enforce_due()
    clock.advance(30)
    await api.runtime.relay.relay_once()
    assert cancelled == []
    clock.advance(31)
    await api.runtime.relay.relay_once()
    assert sorted(cancelled) == sorted(order["id"] for order in orders)
