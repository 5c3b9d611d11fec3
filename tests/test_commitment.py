"""POST /api/orders/{id}/confirm-commitment: seed 003, all six messages."""

from __future__ import annotations

from tests.deadline_helpers import cancelled_by_enforcer, make_watch_tier


async def test_good_tier_orders_need_no_commitment(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    response = await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": "This order does not require commitment confirmation."}


async def test_watch_tier_confirms_once(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    await make_watch_tier(api, store, customer, clock)
    order = await api.place_order(customer, store)
    assert order["commitmentDeadlineAt"] is not None
    response = await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    assert response.status_code == 200
    body = response.json()
    # Seed 003's body, and beside it `data.order` for CampusBite's web client (tests/test_campusbite_compat.py).
    assert list(body) == ["success", "message", "order", "data"]
    assert body["message"] == "Commitment confirmed. Your order will be processed."
    assert list(body["order"]) == ["id", "orderNumber", "status", "requiresCommitment", "commitmentConfirmedAt",
                                   "commitmentDeadline", "totalAmount", "paymentStatus"]
    assert body["order"]["status"] == "placed" and body["order"]["requiresCommitment"] is True
    assert body["order"]["commitmentDeadline"] == order["commitmentDeadlineAt"]
    again = await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    assert again.status_code == 400
    assert again.json() == {"success": False, "message": "Commitment already confirmed for this order."}


async def test_expired_commitment_cancels_the_order(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    await make_watch_tier(api, store, customer, clock)
    order = await api.place_order(customer, store)
    clock.advance(api.runtime.settings.commitment_timeout.total_seconds())
    await cancelled_by_enforcer(api, customer, order["id"])
    response = await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    assert response.status_code == 400
    assert response.json() == {"success": False, "message": "Commitment window has expired. Order has been cancelled."}


async def test_someone_elses_order(api):
    store = await api.store()
    owner, stranger = await api.customer(), await api.customer()
    order = await api.place_order(owner, store)
    response = await api.post(f"/api/orders/{order['id']}/confirm-commitment", stranger)
    assert response.status_code == 403
    assert response.json() == {"success": False,
                               "message": "You are not authorized to confirm commitment for this order."}


async def test_unknown_order(api):
    customer = await api.customer()
    for order_id in ("507f1f77bcf86cd799439011", "nope"):
        response = await api.post(f"/api/orders/{order_id}/confirm-commitment", customer)
        assert response.status_code == 404
        assert response.json() == {"success": False, "message": "Order not found."}


async def test_payment_verified_while_waiting_then_commitment_accepts(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    await make_watch_tier(api, store, customer, clock)
    order = await api.place_order(customer, store)
    response = await api.patch(f"/api/orders/{order['id']}/payment-status", store.staff,
                               json={"paymentStatus": "success"})
    assert response.json()["message"] == "Payment confirmed. Waiting for customer commitment before preparation."
    assert response.json()["data"]["orderStatus"] == "placed"
    blocked = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "accepted"})
    assert blocked.status_code == 400
    confirmed = await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    assert confirmed.json()["order"]["status"] == "accepted"
