"""A store's closing time for payments (issue 22): set through `PATCH /api/stores/{id}/pace`, it
refuses orders from then on, moves every unpaid order's payment deadline to it, and the enforcer
cancels those orders at the closing, on a clock the tests move by hand."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from server.domain.clock import as_utc, iso_z, parse_iso
from server.models import Order
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
