"""Ready-time estimates on the API (issue 12): every active order's `estimatedReadyAt` comes from its
store's live queue, moves when orders ahead finish or leave and when the store declares itself
busy, and a paused store takes no new orders. Time is the test's clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from server.domain.clock import parse_iso
from server.domain.eta import DEFAULT_COOKS, DEFAULT_PREP_MINUTES
from server.services import order_store
from server.services.ready_times import CACHE_SECONDS
from tests.support import Api

PREP = timedelta(minutes=DEFAULT_PREP_MINUTES)  # a new store's defaults: 8 minutes, 2 cooks at once


async def eta(api: Api, customer, order_id: str) -> datetime | None:
    response = await api.get(f"/api/orders/{order_id}", customer)
    assert response.status_code == 200, response.text
    value = response.json()["data"]["estimatedReadyAt"]
    return parse_iso(value) if value else None


async def three_accepted(api_factory, clock):
    """A new store with three of one customer's orders accepted (on payment) at the same moment."""
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    orders = [await api.place_order(customer, store) for _ in range(3)]
    start = clock.now()
    for order in orders:
        await api.advance(store, order["id"], "paid")
    return api, store, customer, orders, start


def near(moment: datetime | None, expected: datetime) -> bool:
    return moment is not None and abs((moment - expected).total_seconds()) < 0.01


async def test_estimates_follow_the_queue_first_come_first_served(api_factory, clock):
    assert DEFAULT_COOKS == 2
    api, store, customer, orders, start = await three_accepted(api_factory, clock)
    first, second, third = [await eta(api, customer, order["id"]) for order in orders]
    assert near(first, start + PREP) and near(second, start + PREP)
    assert near(third, start + 2 * PREP)  # waits for the first cook to be free

    clock.advance(3 * 60)
    await api.advance(store, orders[0]["id"], "processing", "ready")
    assert await eta(api, customer, orders[0]["id"]) is None  # ready: no estimate
    # The order ahead finished early: the third is now on a cook, due PREP after it was accepted.
    assert near(await eta(api, customer, orders[2]["id"]), start + PREP)


async def test_an_order_ahead_cancelled_moves_the_ones_behind_it_forward(api_factory, clock):
    api, store, customer, orders, start = await three_accepted(api_factory, clock)
    assert near(await eta(api, customer, orders[2]["id"]), start + 2 * PREP)
    cancel = await api.patch(f"/api/orders/{orders[0]['id']}/status", store.staff,
                             json={"status": "cancelled", "reason": "Out of paneer"})
    assert cancel.status_code == 200, cancel.text
    assert near(await eta(api, customer, orders[2]["id"]), start + PREP)


async def test_a_busy_store_moves_every_estimate_and_a_paused_one_takes_no_new_orders(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    before = await eta(api, customer, order["id"])
    waiting = (await api.get(f"/api/stores/{store.id}")).json()["data"]["waitMinutes"]

    busy = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"delayMinutes": 10})
    assert busy.status_code == 200, busy.text
    assert busy.json()["data"]["delayMinutes"] == 10 and busy.json()["data"]["waitMinutes"] == waiting + 10
    assert near(await eta(api, customer, order["id"]), before + timedelta(minutes=10))

    token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]  # before the pause
    paused = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"paused": True})
    assert paused.json()["data"]["isPaused"] is True
    message = "This store has paused new orders for a few minutes. Please try again shortly."
    refused = await api.checkout(customer, store)
    assert (refused.status_code, refused.json()["message"]) == (400, message)
    late = await api.post("/api/orders", customer, json={"checkoutToken": token})
    assert (late.status_code, late.json()["message"]) == (409, message)
    assert (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]["orderStatus"] == "accepted"

    resumed = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"paused": False, "delayMinutes": 0})
    assert resumed.json()["data"]["isPaused"] is False
    assert (await api.checkout(customer, store)).status_code == 200
    assert near(await eta(api, customer, order["id"]), before)


async def test_only_the_stores_staff_or_an_admin_set_its_pace_and_bad_input_changes_nothing(api_factory):
    api = await api_factory()
    store, other = await api.store(), await api.store()
    customer = await api.customer()
    for actor in (customer, other.staff):
        response = await api.patch(f"/api/stores/{store.id}/pace", actor, json={"paused": True})
        assert response.status_code == 403, response.text
    assert (await api.patch(f"/api/stores/{store.id}/pace", json={"paused": True})).status_code == 401
    for body, message in (({}, "Send delayMinutes, paused or itemsPerSlot."),
                          ({"delayMinutes": 121}, "delayMinutes must be a whole number of minutes from 0 to 120."),
                          ({"delayMinutes": 2.5}, "delayMinutes must be a whole number of minutes from 0 to 120."),
                          ({"paused": "yes"}, "paused must be true or false.")):
        response = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json=body)
        assert (response.status_code, response.json()["message"]) == (400, message), body
    view = (await api.get(f"/api/stores/{store.id}")).json()["data"]
    assert view["isPaused"] is False and view["delayMinutes"] == 0
    admin = await api.admin()
    assert (await api.patch(f"/api/stores/{store.id}/pace", admin, json={"delayMinutes": 20})).status_code == 200


async def test_a_stores_queue_is_read_once_per_cache_period_and_kept_current_with_this_process_changes(
        api_factory, clock, monkeypatch):
    # The embedded engine serves one command at a time, so reading a busy queue after every change
    # held every other request up: changes made here move the queue held, and it is read again
    # only once CACHE_SECONDS have passed (to learn other processes' changes).
    reads = []
    queue = order_store.queue

    async def counted(store_id, statuses):
        reads.append(store_id)
        return await queue(store_id, statuses)

    monkeypatch.setattr(order_store, "queue", counted)
    api, store, customer, orders, start = await three_accepted(api_factory, clock)
    other = await api_factory(clock=clock)  # a second process on the same database
    assert near(await eta(api, customer, orders[2]["id"]), start + 2 * PREP)
    read_before = len(reads)

    cancel = await api.patch(f"/api/orders/{orders[0]['id']}/status", store.staff,
                             json={"status": "cancelled", "reason": "Out of paneer"})
    assert cancel.status_code == 200, cancel.text
    clock.advance(5)  # within CACHE_SECONDS of the read
    await api.advance(store, orders[1]["id"], "processing", "ready")
    # Both changes are in the estimate (the third is alone on a cook), with no read of the queue.
    assert near(await eta(api, customer, orders[2]["id"]), start + PREP)
    assert len(reads) == read_before

    # A change made by the other process arrives with the next read, once the period is over.
    fourth = await other.place_order(customer, store)
    accepted = clock.now()
    await other.advance(store, fourth["id"], "paid")
    clock.advance(CACHE_SECONDS)
    assert near(await eta(api, customer, fourth["id"]), accepted + PREP)  # on the second cook
