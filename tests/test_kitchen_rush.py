"""The kitchen at rush hour (issue 27) through the API: item marks, undoing a ready order (with the
customer's devices told through a real push service), the recall list, the typical preparation time."""

from __future__ import annotations

import asyncio

from server.models import Order
from tests.support import until
from tests.test_push import FAST_RETRIES, PushService, subscribed  # noqa: F401  (the push_service fixture)
from tests.test_push import push_service  # noqa: F401


async def _preparing(api, customer, store, lines=None) -> dict:
    order = await api.place_order(customer, store, lines)
    await api.advance(store, order["id"], "paid", "processing")
    return order


async def test_marks_are_stored_on_the_order_and_published_as_a_change(api):
    store = await api.store()
    customer = await api.customer()
    order = await _preparing(api, customer, store, [(0, 2), (1, 1)])
    path = f"/api/orders/{order['id']}/items"
    response = await api.request("PUT", f"{path}/1/mark", store.staff, json={"marked": True})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert data["itemMarks"] == [1] and data["version"] == 4
    again = await api.request("PUT", f"{path}/1/mark", store.staff, json={"marked": True})
    assert again.json()["data"]["version"] == 4  # already struck: no change, no event
    await api.request("PUT", f"{path}/0/mark", store.staff, json={"marked": True})
    await api.request("PUT", f"{path}/1/mark", store.staff, json={"marked": False})
    stored = await Order.get(order["id"])
    assert stored.item_marks == [0]
    # The customer sees them too (the order's own detail), and nothing else changed.
    seen = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert seen["itemMarks"] == [0] and seen["orderStatus"] == "processing"


async def test_marks_from_many_screens_at_once_all_land(api):
    store = await api.store()
    customer = await api.customer()
    order = await _preparing(api, customer, store, [(0, 1), (1, 1), (2, 1)])
    answers = await asyncio.gather(*(
        api.request("PUT", f"/api/orders/{order['id']}/items/{index}/mark", store.staff, json={"marked": True})
        for index in range(3)))
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert (await Order.get(order["id"])).item_marks == [0, 1, 2]


async def test_bad_marks_are_refused_and_change_nothing(api):
    store = await api.store()
    other = await api.store()
    customer = await api.customer()
    order = await _preparing(api, customer, store)
    path = f"/api/orders/{order['id']}/items"
    cases = [
        (store.staff, f"{path}/5/mark", {"marked": True}, 400, "This order has no item 5."),
        (store.staff, f"{path}/x/mark", {"marked": True}, 400, "This order has no item x."),
        (store.staff, f"{path}/0/mark", {"marked": "yes"}, 400, None),
        (store.staff, f"{path}/0/mark", {}, 400, None),
        (customer, f"{path}/0/mark", {"marked": True}, 403, None),
        (other.staff, f"{path}/0/mark", {"marked": True}, 403, None),
    ]
    for actor, url, body, status, message in cases:
        response = await api.request("PUT", url, actor, json=body)
        assert response.status_code == status, (url, body, response.text)
        if message:
            assert response.json()["message"] == message
    assert (await Order.get(order["id"])).version == 3
    await api.advance(store, order["id"], "ready")
    closed = await api.request("PUT", f"{path}/0/mark", store.staff, json={"marked": True})
    assert closed.status_code == 409
    assert closed.json()["message"] == "Items can be struck only while the order is with the kitchen."


async def test_a_ready_order_goes_back_to_preparing_within_the_window_and_the_customer_is_told(
        api_factory, clock, push_service):  # noqa: F811
    api = await api_factory(clock=clock, ready_undo_seconds=90, **FAST_RETRIES)
    customer, device = await subscribed(api, push_service)
    store = await api.store()
    order = await _preparing(api, customer, store)
    await api.advance(store, order["id"], "ready")
    await until(lambda: push_service.moments("phone") == ["accepted", "ready"], message="accepted and ready")
    clock.advance(60)
    response = await api.post(f"/api/orders/{order['id']}/undo-ready", store.staff)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Order put back to preparing. The customer has been told it is not ready after all."
    data = body["data"]
    assert (data["orderStatus"], data["readyAt"], data["readyExpiresAt"]) == ("processing", None, None)
    [undo] = data["readyUndos"]
    assert undo["by"]["name"] == "Kavya Staff" and undo["readyAt"] and undo["at"]
    # The customer's poll and detail follow; the pickup code is gone with the ready.
    poll = (await api.get(f"/api/orders/{order['id']}/poll-status", customer)).json()["data"]
    assert poll["orderStatus"] == "processing" and poll["readyAt"] is None
    assert "pickupOtp" not in (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    stored = await Order.get(order["id"])
    assert stored.next_deadline_at is None and stored.otp_nonce is None  # no no-show while preparing again
    await until(lambda: push_service.moments("phone") == ["accepted", "ready", "ready_undone"],
                message="the not-ready-after-all notice")
    notice = push_service.received["phone"][2]
    assert notice["title"] == f"Order {order['orderNumber']} is not ready after all"
    assert "needs a few more minutes" in notice["body"]
    # Ready again: the customer hears it again, once.
    await api.advance(store, order["id"], "ready")
    await until(lambda: push_service.moments("phone")[-1:] == ["ready_again"], message="ready again")
    assert len(await api.otp_of(customer, order["id"])) == 6


async def test_after_the_window_an_undo_is_refused_with_a_clear_message(api_factory, clock):
    api = await api_factory(clock=clock, ready_undo_seconds=1.5)
    store = await api.store()
    customer = await api.customer()
    order = await _preparing(api, customer, store)
    await api.advance(store, order["id"], "ready")
    clock.advance(1.6)
    response = await api.post(f"/api/orders/{order['id']}/undo-ready", store.staff)
    assert response.status_code == 409
    assert response.json()["message"] == (
        f"Too late to undo: order {order['orderNumber']} was marked ready more than 1.5 s ago. "
        "Tell the customer at the counter instead.")
    assert (await Order.get(order["id"])).order_status == "ready"
    # Not ready at all: refused as such; a customer may not undo.
    second = await _preparing(api, customer, store)
    response = await api.post(f"/api/orders/{second['id']}/undo-ready", store.staff)
    assert response.status_code == 409
    assert response.json()["message"] == "Only a ready order can be put back to preparing; this one is processing."
    assert (await api.post(f"/api/orders/{order['id']}/undo-ready", customer)).status_code == 403


async def test_recall_lists_the_last_twenty_orders_that_left_the_board(api):
    store = await api.store()
    customer = await api.customer()
    left = []
    for index in range(22):
        order = await api.place_order(customer, store)
        if index % 2:
            await api.post(f"/api/orders/{order['id']}/cancel", customer)
        else:
            await api.advance(store, order["id"], "paid", "processing", "ready")
        left.append(order["id"])
    still = await _preparing(api, customer, store)
    response = await api.get("/api/orders/recall", store.staff)
    assert response.status_code == 200, response.text
    recalled = [entry["id"] for entry in response.json()["data"]]
    assert recalled == list(reversed(left))[:20]
    assert still["id"] not in recalled
    assert (await api.get("/api/orders/recall", customer)).status_code == 403


async def test_the_store_tells_its_typical_preparation_time_from_its_own_orders(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    default = (await api.get(f"/api/stores/{store.id}")).json()["data"]["typicalPrepMinutes"]
    assert default == 8.0  # too few orders yet: the estimator's default
    for _ in range(4):
        order = await api.place_order(customer, store)
        await api.advance(store, order["id"], "paid", "processing")
        clock.advance(3 * 60)
        await api.advance(store, order["id"], "ready")
    clock.advance(20)  # past the estimates' cache
    api.runtime.ready_times.store_changed(store.id)
    learned = (await api.get(f"/api/stores/{store.id}")).json()["data"]["typicalPrepMinutes"]
    assert learned == 3.0
