"""POST /api/orders: seed 001, to the letter."""

from __future__ import annotations

import asyncio
import re

from server.models import Order

SEED_001_KEYS = [
    "id", "orderNumber", "paymentReference", "totalAmount", "paymentStatus", "orderStatus", "paymentMethod",
    "transactionId", "items", "specialInstructions", "isCommitmentConfirmed", "commitmentDeadlineAt", "store",
    "createdAt", "updatedAt",
]
ISO_MS_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def test_created_order_has_exactly_the_seed_shape(api):
    store = await api.store(menu=[("Paneer Burger", 120), ("French Fries", 80), ("Cold Coffee", 49.5)])
    customer = await api.customer()
    session = (await api.checkout(customer, store, [(0, 1), (1, 1), (2, 1)],
                                  specialInstructions="Extra cheese on the burger please")).json()["data"]
    response = await api.post("/api/orders", customer,
                              json={"checkoutToken": session["checkoutToken"], "transactionId": "upi12345678"})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == ["success", "message", "data"]
    assert body["success"] is True
    assert body["message"] == "Order placed. Complete payment and let the store verify before preparation."
    order = body["data"]
    # Seed 001's keys in its order; then only `_id` (= `id`), where CampusBite's mobile checkout reads it.
    assert list(order) == [*SEED_001_KEYS, "_id"] and order["_id"] == order["id"]
    assert re.fullmatch(r"ORD-\d{8}-\d{3}", order["orderNumber"])
    assert re.fullmatch(r"CBPAY[0-9A-F]{10}", order["paymentReference"])
    assert order["paymentReference"] == session["paymentReference"]
    assert order["totalAmount"] == 249.5
    assert (order["paymentStatus"], order["orderStatus"]) == ("pending", "placed")
    assert order["paymentMethod"] == "direct_store_upi"
    assert order["transactionId"] == "UPI12345678"
    assert order["items"] == [
        {"menuItemId": store.menu[0]["id"], "name": "Paneer Burger", "price": 120, "quantity": 1, "total": 120},
        {"menuItemId": store.menu[1]["id"], "name": "French Fries", "price": 80, "quantity": 1, "total": 80},
        {"menuItemId": store.menu[2]["id"], "name": "Cold Coffee", "price": 49.5, "quantity": 1, "total": 49.5},
    ]
    assert order["specialInstructions"] == "Extra cheese on the burger please"
    assert order["isCommitmentConfirmed"] is False
    assert order["commitmentDeadlineAt"] is None
    assert order["store"] == {"id": store.id, "name": order["store"]["name"], "location": "Building A, Ground Floor"}
    assert ISO_MS_Z.match(order["createdAt"]) and order["createdAt"] == order["updatedAt"]


async def test_totals_are_exact_in_paise(api):
    store = await api.store(menu=[("Tea", 0.1), ("Samosa", 0.2)])
    customer = await api.customer()
    order = await api.place_order(customer, store, [(0, 3), (1, 3)])
    assert order["totalAmount"] == 0.9  # 3 × 0.1 + 3 × 0.2 in floats would be 0.9000000000000001


async def test_same_checkout_token_returns_the_existing_order(api):
    store = await api.store()
    customer = await api.customer()
    token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    first = await api.post("/api/orders", customer, json={"checkoutToken": token})
    second = await api.post("/api/orders", customer, json={"checkoutToken": token})
    assert first.status_code == 201 and second.status_code == 200
    assert second.json()["data"]["id"] == first.json()["data"]["id"]


async def test_twenty_concurrent_creates_with_one_token_make_one_order(api):
    store = await api.store()
    customer = await api.customer()
    token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    responses = await asyncio.gather(*(api.post("/api/orders", customer, json={"checkoutToken": token})
                                       for _ in range(20)))
    assert sorted(r.status_code for r in responses) == [200] * 19 + [201]
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    assert await Order.find({"user_id": customer.id}).count() == 1


async def test_order_numbers_are_a_daily_sequence_without_duplicates(api):
    store = await api.store()
    customers = [await api.customer() for _ in range(3)]
    tokens = []
    for customer in customers:
        for _ in range(4):
            tokens.append((customer, (await api.checkout(customer, store)).json()["data"]["checkoutToken"]))
    responses = await asyncio.gather(*(api.post("/api/orders", c, json={"checkoutToken": t}) for c, t in tokens))
    numbers = sorted(r.json()["data"]["orderNumber"] for r in responses)
    assert len(set(numbers)) == 12
    assert [int(n[-3:]) for n in numbers] == list(range(1, 13))


async def test_missing_checkout_token(api):
    customer = await api.customer()
    for body in ({}, {"checkoutToken": ""}, {"checkoutToken": None}):
        response = await api.post("/api/orders", customer, json=body)
        assert response.status_code == 400
        assert response.json() == {"success": False, "message": "Checkout token is required."}


async def test_invalid_or_foreign_checkout_token(api):
    store = await api.store()
    owner, other = await api.customer(), await api.customer()
    token = (await api.checkout(owner, store)).json()["data"]["checkoutToken"]
    for actor, value in ((owner, "not-a-jwt"), (owner, token[:-4] + "AAAA"), (other, token), (owner, 12345),
                         (owner, owner.access_token)):
        response = await api.post("/api/orders", actor, json={"checkoutToken": value})
        assert response.status_code == 400, value
        assert response.json() == {"success": False,
                                   "message": "Checkout session expired or invalid. Please retry payment."}


async def test_expired_checkout_token(api_factory, clock):
    api = await api_factory(clock=clock, checkout_session_minutes=5)  # shorter than the access token's 15
    store = await api.store()
    customer = await api.customer()
    token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    clock.advance(api.runtime.settings.checkout_lifetime.total_seconds())
    response = await api.post("/api/orders", customer, json={"checkoutToken": token})
    assert response.json()["message"] == "Checkout session expired or invalid. Please retry payment."


async def test_transaction_id_must_be_8_to_40_alphanumerics(api):
    store = await api.store()
    customer = await api.customer()
    token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    for bad in ("UPI123", "X" * 41, "UPI-12345678", "UPI 12345678", 12345678, ["UPI12345678"]):
        response = await api.post("/api/orders", customer, json={"checkoutToken": token, "transactionId": bad})
        assert response.status_code == 400, bad
        assert response.json() == {"success": False, "message":
                                   "UPI transaction ID must be 8-40 alphanumeric characters when provided."}
    assert await Order.find({"user_id": customer.id}).count() == 0


async def test_transaction_id_already_on_another_order(api):
    store = await api.store()
    first, second = await api.customer(), await api.customer()
    await api.place_order(first, store, transaction_id="UPI12345678")
    token = (await api.checkout(second, store)).json()["data"]["checkoutToken"]
    response = await api.post("/api/orders", second, json={"checkoutToken": token, "transactionId": "upi12345678"})
    assert response.status_code == 409
    assert response.json() == {"success": False, "message": "This transaction ID is already linked to another "
                                                            "order. Please check the ID and try again."}


async def test_concurrent_orders_with_one_transaction_id_only_one_wins(api):
    store = await api.store()
    customers = [await api.customer() for _ in range(5)]
    tokens = [(c, (await api.checkout(c, store)).json()["data"]["checkoutToken"]) for c in customers]
    responses = await asyncio.gather(*(api.post("/api/orders", c, json={"checkoutToken": t,
                                                                        "transactionId": "UPIRACE0001"})
                                       for c, t in tokens))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 4


async def test_cart_changed_after_checkout(api):
    store = await api.store()
    customer = await api.customer()
    message = "Cart details changed during payment. Please retry checkout with updated cart."
    for change in ({"price": 125}, {"isAvailable": False}):
        token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
        response = await api.patch(f"/api/menu/{store.menu[0]['id']}", store.staff, json=change)
        assert response.status_code == 200
        response = await api.post("/api/orders", customer, json={"checkoutToken": token})
        assert response.status_code == 409
        assert response.json() == {"success": False, "message": message}
        await api.patch(f"/api/menu/{store.menu[0]['id']}", store.staff, json={"price": 120, "isAvailable": True})


async def test_only_customers_create_orders(api):
    store = await api.store()
    response = await api.post("/api/orders", store.staff, json={"checkoutToken": "x"})
    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "You do not have permission to perform this action."}
