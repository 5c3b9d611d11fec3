"""Server-Sent Events on a real server process (SSE_HEARTBEAT_SECONDS=0.5)."""

from __future__ import annotations

import json

import httpx
from bson import ObjectId

from tests.realtime.conftest import Site, SseWatcher, metric, metrics_of
from tests.support import until


async def test_an_order_stream_sends_the_snapshot_first_then_events_with_version_ids_and_heartbeats(site: Site):
    order = await site.api.place_order(site.alice, site.store)
    stream = SseWatcher().start(f"{site.server.url}/api/orders/{order['id']}/events", site.alice.access_token)
    try:
        await until(lambda: stream.messages, message="the snapshot")
        assert stream.http_status == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        event_id, event, data = stream.messages[0]
        assert (event_id, event) == ("1", "snapshot")
        assert [o["id"] for o in json.loads(data)["orders"]] == [order["id"]]

        await site.api.advance(site.store, order["id"], "paid", "processing")
        await until(lambda: stream.version(order["id"]) == 3, message="version 3")
        assert [(m[0], m[1]) for m in stream.messages[1:]] == [("2", "order"), ("3", "order")]
        assert json.loads(stream.messages[2][2])["order"]["orderStatus"] == "processing"
        await until(lambda: ": heartbeat" in stream.comments, timeout=3, message="a heartbeat")
        assert stream.regressions == []
    finally:
        await stream.stop()


async def test_resuming_with_last_event_id_after_a_disconnect_receives_the_current_state(site: Site):
    order = await site.api.place_order(site.alice, site.store)
    url = f"{site.server.url}/api/orders/{order['id']}/events"
    first = SseWatcher().start(url, site.alice.access_token)
    await site.api.advance(site.store, order["id"], "paid")
    await until(lambda: first.version(order["id"]) == 2, message="version 2")
    await first.stop()
    assert first.last_event_id == "2"

    # Changes while disconnected.
    await site.api.advance(site.store, order["id"], "processing", "ready")
    resumed = SseWatcher().start(url, site.alice.access_token, last_event_id=first.last_event_id)
    try:
        await until(lambda: resumed.version(order["id"]) == 4, message="the current state after resuming")
        assert resumed.http_status == 200
        assert resumed.status(order["id"]) == "ready"
        assert resumed.messages[0][0] == "4"
        assert "pickupOtp" not in json.dumps(resumed.orders)
        await site.api.advance(site.store, order["id"], "cancelled")
        await until(lambda: resumed.status(order["id"]) == "cancelled", message="a live event after resuming")
        assert resumed.regressions == []
    finally:
        await resumed.stop()

    # Resuming a stream that is already current sends nothing old, and live events still arrive.
    current = SseWatcher().start(url, site.alice.access_token, last_event_id="5")
    try:
        await until(lambda: ": heartbeat" in current.comments, timeout=3, message="the stream to be open")
        assert current.messages == []
    finally:
        await current.stop()


async def test_a_store_stream_gives_its_staff_the_kitchen_view_and_new_orders(site: Site):
    store = await site.api.store(site.deployment.admin)
    stream = SseWatcher().start(f"{site.server.url}/api/stores/{store.id}/events?token={store.staff.access_token}",
                                store.staff.access_token)
    try:
        await until(lambda: stream.messages, message="the snapshot")
        assert stream.messages[0][1] == "snapshot" and json.loads(stream.messages[0][2])["orders"] == []
        created = await site.api.place_order(site.alice, store, specialInstructions="less ice")
        await until(lambda: created["id"] in stream.orders, message="the created order")
        event = json.loads(stream.messages[-1][2])
        assert event["event"] == "created"
        assert event["order"]["specialInstructions"] == "less ice"
        assert event["order"]["customerFirstName"] == "Alice"
        text = await metrics_of(site.server)
        assert metric(text, "orderpulse_sse_streams_open") >= 1
    finally:
        await stream.stop()


async def test_streams_refuse_other_users_orders_with_403_and_unknown_ones_with_404(site: Site):
    alices = await site.api.place_order(site.alice, site.store)
    async with httpx.AsyncClient(base_url=site.server.url, timeout=10) as client:
        bob = {"Authorization": f"Bearer {site.bob.access_token}"}
        response = await client.get(f"/api/orders/{alices['id']}/events", headers=bob)
        assert response.status_code == 403
        assert response.json() == {"success": False, "message": response.json()["message"]}
        for unknown in (str(ObjectId()), "not-an-id"):
            response = await client.get(f"/api/orders/{unknown}/events", headers=bob)
            assert (response.status_code, response.json()) == (404, {"success": False, "message": "Order not found."})
        response = await client.get(f"/api/orders/{alices['id']}/events")
        assert response.status_code == 401
        response = await client.get(f"/api/stores/{site.store.id}/events", headers=bob)
        assert response.status_code == 403
        other_staff = {"Authorization": f"Bearer {site.other_store.staff.access_token}"}
        response = await client.get(f"/api/stores/{site.store.id}/events", headers=other_staff)
        assert response.status_code == 403


async def test_streams_abandoned_at_once_release_their_subscriptions(site: Site):
    """Clients that leave before reading anything leave nothing subscribed behind."""
    order = await site.api.place_order(site.alice, site.store)
    url = f"{site.server.url}/api/orders/{order['id']}/events?token={site.alice.access_token}"

    async def subscriptions() -> float:
        return metric(await metrics_of(site.server), "orderpulse_subscriptions", '{kind="order"}')

    before = await subscriptions()
    for _ in range(10):
        async with httpx.AsyncClient() as client:
            async with client.stream("GET", url) as response:
                assert response.status_code == 200
    await until(lambda: _equal(subscriptions(), before), message="every abandoned stream released")


async def _equal(value, expected) -> bool:
    return await value == expected
