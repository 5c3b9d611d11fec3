"""GET /api/orders/{id}/poll-status: seed 000, ETags, the poll interval, long-poll, no database read."""

from __future__ import annotations

import asyncio

from server import metrics
from tests.support import until

SEED_000_KEYS = ["id", "orderNumber", "orderStatus", "paymentStatus", "totalAmount", "isCommitmentConfirmed",
                 "commitmentDeadlineAt", "readyAt", "readyExpiresAt", "isOtpVerified", "cancelledAt",
                 "cancellationReason", "updatedAt"]


def reads() -> float:
    return sum(metrics.DB_COMMANDS.labels(name)._value.get() for name in ("find", "aggregate", "count"))


async def test_body_has_exactly_the_thirteen_fields_of_the_seed(api):
    store = await api.store(menu=[("Combo", 249.5)])
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing")
    response = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    assert response.status_code == 200
    body = response.json()
    assert list(body) == ["success", "data"] and body["success"] is True
    assert list(body["data"]) == SEED_000_KEYS
    data = body["data"]
    assert data["id"] == order["id"] and data["orderNumber"] == order["orderNumber"]
    assert (data["orderStatus"], data["paymentStatus"], data["totalAmount"]) == ("processing", "success", 249.5)
    assert data["isCommitmentConfirmed"] is False
    for absent in ("commitmentDeadlineAt", "readyAt", "readyExpiresAt", "cancelledAt", "cancellationReason"):
        assert data[absent] is None


async def test_unknown_and_malformed_ids_are_404(api):
    customer = await api.customer()
    for order_id in ("65f7a8b9c1234567890abcde", "not-an-id", "1234"):
        response = await api.get(f"/api/orders/{order_id}/poll-status", customer)
        assert response.status_code == 404
        assert response.json() == {"success": False, "message": "Order not found."}


async def test_another_customers_order_is_403_and_reveals_nothing(api):
    store = await api.store()
    owner, stranger = await api.customer(), await api.customer()
    order = await api.place_order(owner, store)
    for _ in range(2):  # from the database, then from the per-process snapshot
        response = await api.get(f"/api/orders/{order['id']}/poll-status", stranger)
        assert response.status_code == 403
        assert response.json() == {"success": False, "message": "You are not authorized to view this order."}
        await api.get(f"/api/orders/{order['id']}/poll-status", owner)


async def test_another_stores_staff_cannot_poll(api):
    store, other_store = await api.store(), await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    assert (await api.get(f"/api/orders/{order['id']}/poll-status", store.staff)).status_code == 200
    response = await api.get(f"/api/orders/{order['id']}/poll-status", other_store.staff)
    assert response.status_code == 403


async def test_etag_and_304(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    first = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    etag = first.headers["etag"]
    unchanged = await api.get(f"/api/orders/{order['id']}/poll-status", customer, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    await api.advance(store, order["id"], "paid")
    changed = await api.get(f"/api/orders/{order['id']}/poll-status", customer, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["data"]["orderStatus"] == "accepted"


async def test_polling_faster_than_the_interval_is_429_with_retry_after(api_factory, clock):
    api = await api_factory(clock=clock, poll_min_interval_seconds=1)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    first = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    assert first.status_code == 200
    again = await api.get(f"/api/orders/{order['id']}/poll-status", customer,
                          headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 429 and again.headers["retry-after"] == "1"
    assert again.json() == {"success": False, "message": "Polling too frequently. Retry after 1 s."}
    # The limit is per caller: the store's staff may poll the same order meanwhile.
    assert (await api.get(f"/api/orders/{order['id']}/poll-status", store.staff)).status_code == 200
    clock.advance(0.999)
    assert (await api.get(f"/api/orders/{order['id']}/poll-status", customer)).status_code == 429
    clock.advance(0.001)
    assert (await api.get(f"/api/orders/{order['id']}/poll-status", customer)).status_code == 200


async def test_long_poll_returns_when_the_order_changes(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    etag = (await api.get(f"/api/orders/{order['id']}/poll-status", customer)).headers["etag"]
    waiting = asyncio.create_task(api.get(f"/api/orders/{order['id']}/poll-status?wait=20", customer,
                                          headers={"If-None-Match": etag}))
    await until(lambda: clock.sleeping(20), message="the long poll to wait")
    await api.advance(store, order["id"], "paid")  # the clock stands still: only the change can answer it
    response = await waiting
    assert response.status_code == 200 and response.json()["data"]["orderStatus"] == "accepted"


async def test_long_poll_times_out_with_304(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    etag = (await api.get(f"/api/orders/{order['id']}/poll-status", customer)).headers["etag"]
    # Two seconds: nothing else in the process sleeps exactly that long (the outbox relay sleeps one).
    waiting = asyncio.create_task(api.get(f"/api/orders/{order['id']}/poll-status?wait=2", customer,
                                          headers={"If-None-Match": etag}))
    await until(lambda: clock.sleeping(2), message="the long poll to wait")
    clock.advance(2)
    assert (await waiting).status_code == 304


async def test_wait_outside_1_to_30_is_400(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    for wait in ("0", "31", "abc", "-1"):
        response = await api.get(f"/api/orders/{order['id']}/poll-status?wait={wait}", customer)
        assert response.status_code == 400


async def test_unchanged_order_is_polled_without_any_database_read(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.get(f"/api/orders/{order['id']}/poll-status", customer)  # first poll reads and caches
    # Quiet the background tasks, whose own reads are not the polls'.
    await api.runtime.enforcer.stop()
    await api.runtime.relay.stop()
    before = reads()
    for _ in range(50):
        response = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
        assert response.status_code == 200
    assert reads() == before


async def test_snapshot_follows_changes_immediately(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    for step, expected in (("paid", "accepted"), ("processing", "processing"), ("ready", "ready")):
        await api.advance(store, order["id"], step)
        response = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
        assert response.json()["data"]["orderStatus"] == expected
