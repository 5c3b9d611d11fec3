"""The order lifecycle: payment, transitions with compare-and-set, OTP pickup, cancellation."""

from __future__ import annotations

import asyncio

from server.models import Order

CONFLICT = {"success": False, "message": "Order status changed. Refresh and try again."}


async def test_full_lifecycle_bumps_version_once_per_change(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    versions = []
    for step, status in (("paid", "accepted"), ("processing", "processing"), ("ready", "ready")):
        data = (await api.advance(store, order["id"], step)).json()["data"]
        assert data["orderStatus"] == status
        versions.append(data["version"])
    assert versions == [2, 3, 4]
    ready = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert ready["readyAt"] and ready["readyExpiresAt"] and len(ready["pickupOtp"]) == 6
    assert "pickupOtp" not in (await api.get(f"/api/orders/{order['id']}", store.staff)).json()["data"]
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": ready["pickupOtp"]})
    assert response.status_code == 200
    assert response.json()["message"] == "OTP verified. Order picked up."
    done = response.json()["data"]
    assert (done["orderStatus"], done["isOtpVerified"], done["version"]) == ("picked_up", True, 5)
    assert "pickupOtp" not in (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]


async def test_the_database_never_holds_the_pickup_code(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    otp = await api.otp_of(customer, order["id"])
    raw = await Order.get_pymongo_collection().find_one({"order_number": order["orderNumber"]})
    assert otp not in repr(raw)


async def test_payment_failed_cancels(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    response = await api.patch(f"/api/orders/{order['id']}/payment-status", store.staff,
                               json={"paymentStatus": "failed"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["orderStatus"], data["paymentStatus"], data["cancellationReason"]) == (
        "cancelled", "failed", "payment_failed")


async def test_payment_can_be_set_only_once(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    response = await api.patch(f"/api/orders/{order['id']}/payment-status", store.staff,
                               json={"paymentStatus": "failed"})
    assert response.status_code == 409
    assert response.json()["message"] == "Payment status is already success."


async def test_an_unpaid_order_can_be_accepted_but_not_handed_over(api):
    """CampusBite's counter flow (README): accept, prepare and ready before payment; pickup waits for it."""
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    response = await api.advance(store, order["id"], "accepted", "processing", "ready")
    assert response.json()["data"]["paymentStatus"] == "pending"
    otp = await api.otp_of(customer, order["id"])
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": otp})
    assert response.status_code == 400
    assert response.json()["message"] == "Payment must be confirmed before the order is picked up."


async def test_skipping_ahead_is_refused_and_stale_moves_conflict(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    response = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "ready"})
    assert response.status_code == 400
    assert response.json()["message"] == "Cannot move an order from placed to ready."
    await api.advance(store, order["id"], "paid", "processing")
    stale = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "processing"})
    assert stale.status_code == 409 and stale.json() == CONFLICT
    pickup = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "picked_up"})
    assert pickup.status_code == 400


async def test_twenty_concurrent_transitions_have_exactly_one_winner(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    responses = await asyncio.gather(*(
        api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "processing"})
        for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] + [409] * 19
    assert all(r.json() == CONFLICT for r in responses if r.status_code == 409)
    final = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert final["version"] == 3


async def test_store_cancels_with_a_reason(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid")
    response = await api.patch(f"/api/orders/{order['id']}/status", store.staff,
                               json={"status": "cancelled", "reason": "Out of paneer"})
    assert response.json()["data"]["cancellationReason"] == "store_cancelled"
    again = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "cancelled"})
    assert again.status_code == 409


async def test_customer_cancels_only_unpaid_placed_orders(api):
    store = await api.store()
    customer = await api.customer()
    unpaid = await api.place_order(customer, store)
    response = await api.post(f"/api/orders/{unpaid['id']}/cancel", customer)
    assert response.status_code == 200
    assert response.json()["data"]["cancellationReason"] == "customer_cancelled"
    paid = await api.place_order(customer, store)
    await api.advance(store, paid["id"], "paid")
    response = await api.post(f"/api/orders/{paid['id']}/cancel", customer)
    assert response.status_code == 409
    assert response.json()["message"] == "Only placed orders with pending payment can be cancelled."


async def test_picked_up_orders_cannot_be_cancelled(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    otp = await api.otp_of(customer, order["id"])
    await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": otp})
    response = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "cancelled"})
    assert response.status_code == 409


async def test_wrong_codes_then_lockout(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    otp = await api.otp_of(customer, order["id"])
    wrong = "000000" if otp != "000000" else "111111"
    for _ in range(5):
        response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": wrong})
        assert response.status_code == 400
        assert response.json() == {"success": False, "message": "Invalid or expired OTP."}
    locked = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": otp})
    lockout = api.runtime.settings.otp_lockout_seconds
    assert locked.status_code == 429 and locked.headers["retry-after"] == str(int(lockout))
    clock.advance(lockout - 0.001)
    still = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": otp})
    assert still.status_code == 429 and still.headers["retry-after"] == "1"
    clock.advance(0.001)
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": otp})
    assert response.status_code == 200


async def test_otp_before_ready_is_invalid(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": "123456"})
    assert response.status_code == 400 and response.json()["message"] == "Invalid or expired OTP."


async def test_listing_is_scoped_paginated_and_newest_first(api):
    store, other_store = await api.store(), await api.store()
    alice, bob = await api.customer(), await api.customer()
    mine = [await api.place_order(alice, store) for _ in range(3)]
    await api.place_order(bob, other_store)
    page = (await api.get("/api/orders?limit=2&page=1", alice)).json()
    assert page["pagination"] == {"total": 3, "page": 1, "limit": 2, "totalPages": 2} and len(page["data"]) == 2
    assert [o["id"] for o in page["data"]] == [mine[2]["id"], mine[1]["id"]]
    staff_view = (await api.get("/api/orders?status=placed,accepted", store.staff)).json()["data"]
    assert {o["id"] for o in staff_view} == {o["id"] for o in mine}
    other_view = (await api.get("/api/orders", other_store.staff)).json()
    assert other_view["pagination"]["total"] == 1
    assert (await api.get("/api/orders?status=eaten", alice)).status_code == 400
    assert (await api.get("/api/orders?limit=500", alice)).status_code == 400


async def test_staff_of_another_store_cannot_touch_an_order(api):
    store, other_store = await api.store(), await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    for method, path, body in (("PATCH", "payment-status", {"paymentStatus": "success"}),
                               ("PATCH", "status", {"status": "cancelled"}),
                               ("POST", "verify-otp", {"otp": "123456"})):
        response = await api.request(method, f"/api/orders/{order['id']}/{path}", other_store.staff, json=body)
        assert response.status_code == 403, path
    assert (await api.get(f"/api/orders/{order['id']}", other_store.staff)).status_code == 403
    unchanged = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert unchanged["version"] == 1


async def test_customers_cannot_use_store_routes(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    response = await api.patch(f"/api/orders/{order['id']}/status", customer, json={"status": "accepted"})
    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "You do not have permission to perform this action."}


async def test_an_unknown_status_filter_names_every_status_in_lifecycle_order(api):
    alice = await api.customer()
    response = await api.get("/api/orders?status=placed,eaten", alice)
    assert response.status_code == 400
    # The same text on every process (a set once ordered it by each process's string hashes).
    assert response.json()["message"] == (
        "status must be a comma-separated list of: placed, accepted, processing, ready, picked_up, cancelled.")
