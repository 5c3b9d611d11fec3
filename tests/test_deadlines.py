"""Deadlines, enforced once by the background task, on a clock the tests move by hand; the
short timeouts keep the sessions' tokens alive while the clock moves."""

from __future__ import annotations

import asyncio
import re

from server.domain.clock import parse_iso
from server.models import Order
from tests.deadline_helpers import cancelled_by_enforcer, make_watch_tier, no_show


async def test_unpaid_orders_are_cancelled_by_the_payment_timeout(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    unpaid = api.runtime.settings.unpaid_timeout
    clock.advance(unpaid.total_seconds() - 0.001)
    assert await api.runtime.enforcer.enforce_due() == 0  # not a millisecond early
    clock.advance(0.001)
    data = await cancelled_by_enforcer(api, customer, order["id"])
    assert (data["cancellationReason"], data["paymentStatus"]) == ("payment_timeout", "failed")
    assert parse_iso(data["cancelledAt"]) - parse_iso(order["createdAt"]) == unpaid  # and not later
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert profile["noShowCount"] == 0  # an unpaid order is not a no-show


async def test_verified_payment_stops_the_payment_clock(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    clock.advance(api.runtime.settings.unpaid_timeout.total_seconds() + 1)
    assert await api.runtime.enforcer.enforce_due() == 0
    assert (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]["orderStatus"] == "accepted"


async def test_ready_orders_not_picked_up_become_no_shows(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    data = await no_show(api, store, customer, clock)
    assert data["cancellationReason"] == "no_show_timeout"
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert (profile["noShowCount"], profile["trustTier"]) == (1, "good")


async def test_commitment_timeout_records_a_no_show(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01, order_commitment_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    await make_watch_tier(api, store, customer, clock)
    order = await api.place_order(customer, store)
    assert order["commitmentDeadlineAt"] is not None
    clock.advance(api.runtime.settings.commitment_timeout.total_seconds())
    data = await cancelled_by_enforcer(api, customer, order["id"])
    assert data["cancellationReason"] == "commitment_timeout"
    assert (await api.get("/api/users/me", customer)).json()["data"]["noShowCount"] == 3


async def test_third_no_show_restricts_until_the_block_ends(api_factory, clock):
    restriction_days = 3 / 86400  # three seconds
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01, no_show_restriction_days=restriction_days)
    store = await api.store()
    customer = await api.customer()
    for _ in range(3):
        await no_show(api, store, customer, clock)
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert (profile["trustTier"], profile["noShowCount"]) == ("restricted", 3)
    assert profile["orderingRestrictedUntil"]
    response = await api.checkout(customer, store)
    assert response.status_code == 403
    message = response.json()["message"]
    assert re.fullmatch(r"Ordering is temporarily restricted due to repeated no-shows until "
                        r"[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d{4} \d\d:\d\d:\d\d GMT\+0530\.", message), message
    clock.advance(2.999)
    assert (await api.get("/api/users/me", customer)).json()["data"]["trustTier"] == "restricted"
    clock.advance(0.001)
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert (profile["trustTier"], profile["orderingRestrictedUntil"]) == ("watch", None)
    order = await api.place_order(customer, store)
    assert order["commitmentDeadlineAt"] is not None


async def test_restricted_user_cannot_create_an_order_from_an_earlier_checkout(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    for _ in range(2):
        await no_show(api, store, customer, clock)
    early_token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    await no_show(api, store, customer, clock)
    response = await api.post("/api/orders", customer, json={"checkoutToken": early_token})
    assert response.status_code == 403
    assert response.json()["message"].startswith("Ordering is temporarily restricted due to repeated no-shows until ")


async def test_two_enforcers_racing_record_a_no_show_exactly_once(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    second = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)  # same database: a second process
    for runtime in (api.runtime, second.runtime):
        await runtime.enforcer.stop()  # the test runs the passes itself, all at once
    store = await api.store()
    customer = await api.customer()
    orders = [await api.place_order(customer, store) for _ in range(5)]
    for order in orders:
        await api.advance(store, order["id"], "paid", "processing", "ready")
    clock.advance(api.runtime.settings.ready_timeout.total_seconds())  # every ready window has now passed
    counts = await asyncio.gather(*(runtime.enforcer.enforce_due() for runtime in
                                    (api.runtime, second.runtime, api.runtime, second.runtime)))
    assert sum(counts) == 5
    stored = await Order.find({"user_id": customer.id}).to_list()
    assert all(o.order_status == "cancelled" and o.version == 5 for o in stored)
    assert (await api.get("/api/users/me", customer)).json()["data"]["noShowCount"] == 5


async def test_reads_enforce_the_orders_own_due_deadline(api_factory, clock):
    api = await api_factory(clock=clock)
    await api.runtime.enforcer.stop()  # only the read can cancel it now
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    clock.advance(api.runtime.settings.unpaid_timeout.total_seconds())
    response = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    assert response.json()["data"]["cancellationReason"] == "payment_timeout"


async def test_enforcer_wakes_early_for_a_nearer_deadline(api_factory, clock):
    # Three seconds: within the enforcer's 5 s look at the database, so only the early wake meets it.
    api = await api_factory(clock=clock, unpaid_order_timeout_minutes=0.05, ready_no_show_timeout_minutes=60)
    store = await api.store()
    customer = await api.customer()
    far = await api.place_order(customer, store)
    await api.advance(store, far["id"], "paid", "processing", "ready")  # due in an hour
    near = await api.place_order(customer, store)  # due in three seconds
    clock.advance(3)
    data = await cancelled_by_enforcer(api, customer, near["id"])
    assert data["cancellationReason"] == "payment_timeout"
