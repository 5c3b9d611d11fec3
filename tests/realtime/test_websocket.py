"""`GET /ws` against a real server process: auth, frames, snapshots, events, refusals, limits."""

from __future__ import annotations

import json
import time
import uuid

import jwt
from bson import ObjectId
from websockets.exceptions import ConnectionClosed

from tests.harness import TEST_JWT_SECRET
from tests.realtime.conftest import (
    Site,
    Watcher,
    metric,
    metrics_of,
    redis_channels,
)
from tests.support import until

LEAN_KEYS = {"id", "orderNumber", "orderStatus", "paymentStatus", "totalAmount", "isCommitmentConfirmed",
             "commitmentDeadlineAt", "readyAt", "readyExpiresAt", "isOtpVerified", "cancelledAt",
             "cancellationReason", "updatedAt", "storeId", "version"}
KITCHEN_KEYS = {"items", "specialInstructions", "customerFirstName", "requiresCommitment"}


async def ping(watcher: Watcher) -> None:
    """A round trip: everything queued for the socket before the pong has arrived after it."""
    answer = await watcher.ask({"type": "ping"})
    assert answer == {"type": "pong", "id": answer["id"]}


# --- auth and keep-alive ---------------------------------------------------------------------------

async def test_bearer_header_and_query_token_both_open_a_socket_and_ping_echoes_the_id(site: Site):
    by_header = await Watcher.open(site.server.ws_url, headers={"Authorization": f"Bearer {site.alice.access_token}"})
    by_query = await site.watcher(site.alice)
    try:
        for watcher in (by_header, by_query):
            await watcher.send({"type": "ping", "id": 42})
            assert await until(lambda w=watcher: w.frames) == [{"type": "pong", "id": 42}]
            await watcher.send({"type": "ping"})
            await until(lambda w=watcher: len(w.frames) == 2)
            assert watcher.frames[1] == {"type": "pong"}
    finally:
        await by_header.close()
        await by_query.close()


async def test_missing_garbage_and_expired_tokens_close_with_4401(site: Site):
    expired = jwt.encode({"sub": site.alice.id, "role": "student", "typ": "access", "jti": uuid.uuid4().hex,
                          "iat": int(time.time()) - 120, "exp": int(time.time()) - 60}, TEST_JWT_SECRET)
    wrong_secret = jwt.encode({"sub": site.alice.id, "role": "student", "typ": "access", "jti": "x",
                               "iat": int(time.time()), "exp": int(time.time()) + 600}, "another-secret-" * 4)
    for token in (None, "garbage", "", expired, wrong_secret):
        watcher = await site.watcher() if token is None else await Watcher.open(site.server.ws_url, token)
        assert await watcher.wait_closed() == 4401, token
        assert watcher.frames == []
    watcher = await Watcher.open(site.server.ws_url, headers={"Authorization": "Basic abc"})
    assert await watcher.wait_closed() == 4401


async def test_a_token_that_expires_while_the_socket_is_open_closes_it_with_4401_at_expiry(site: Site):
    short = site.deployment.server(ACCESS_TOKEN_MINUTES="0.05")
    await site.deployment.start(short)
    try:
        alice = await site.deployment.api(short).login(site.alice.user["email"])
        expires_at = jwt.decode(alice.access_token, options={"verify_signature": False})["exp"]
        order = await site.api.place_order(alice, site.store)
        watcher = await site.watcher(alice)
        assert (await watcher.subscribe(orderIds=[order["id"]]))["type"] == "snapshot"
        assert await watcher.wait_closed(timeout=10) == 4401
        closed_at = time.time()
        assert expires_at - 0.5 <= closed_at <= expires_at + 1.5
        # The same token now counts as expired when a socket opens with it.
        again = await site.watcher(alice)
        assert await again.wait_closed() == 4401
    finally:
        short.kill()


# --- subscriptions, snapshots and events -------------------------------------------------------------

async def test_subscribing_own_orders_sends_a_snapshot_then_versioned_events_without_the_otp(site: Site):
    first = await site.api.place_order(site.alice, site.store)
    second = await site.api.place_order(site.alice, site.store)
    watcher = await site.watcher(site.alice)
    try:
        snapshot = await watcher.subscribe(orderIds=[first["id"], second["id"]])
        assert snapshot["type"] == "snapshot"
        assert {o["id"] for o in snapshot["orders"]} == {first["id"], second["id"]}
        for entry in snapshot["orders"]:
            assert set(entry) == LEAN_KEYS | {"estimatedReadyAt"}  # the customer's view: no kitchen fields
            assert entry["estimatedReadyAt"].endswith("Z")  # placed: in the store's queue
            assert entry["version"] == 1 and entry["orderStatus"] == "placed"
            assert entry["storeId"] == site.store.id

        await site.api.advance(site.store, first["id"], "paid", "processing", "ready")
        await until(lambda: watcher.version(first["id"]) == 4, message="version 4")
        assert watcher.event_versions[first["id"]] == [2, 3, 4]
        events = [f for f in watcher.frames if f["type"] == "order"]
        assert [e["order"]["orderStatus"] for e in events] == ["accepted", "processing", "ready"]
        for event in events:
            assert event["event"] == "updated" and event["version"] == event["order"]["version"]
            assert set(event["order"]) == LEAN_KEYS
        otp = await site.api.otp_of(site.alice, first["id"])
        raw = json.dumps(watcher.frames)
        assert "pickupOtp" not in raw and otp not in raw
        assert watcher.regressions == []
        # A second subscribe (even to what it already watches) gets its own snapshot.
        again = await watcher.subscribe(orderIds=[first["id"]])
        assert [o["version"] for o in again["orders"]] == [4]
    finally:
        await watcher.close()


async def test_a_store_subscriber_gets_the_kitchen_view_of_every_order_including_new_ones(site: Site):
    store = await site.api.store(site.deployment.admin)
    existing = await site.api.place_order(site.bob, store, specialInstructions="no onions")
    staff = await site.watcher(store.staff)
    try:
        snapshot = await staff.subscribe(storeId=store.id)
        assert [o["id"] for o in snapshot["orders"]] == [existing["id"]]
        assert KITCHEN_KEYS <= set(snapshot["orders"][0])
        assert snapshot["orders"][0]["customerFirstName"] == "Bob"

        created = await site.api.place_order(site.alice, store, lines=[(0, 2), (2, 1)],
                                             specialInstructions="extra spicy, please")
        await until(lambda: created["id"] in staff.orders, message="the created event")
        event = staff.events[-1]
        assert event["event"] == "created" and event["version"] == 1
        order = event["order"]
        assert order["items"] == [{"name": "Paneer Burger", "quantity": 2}, {"name": "Cold Coffee", "quantity": 1}]
        assert order["specialInstructions"] == "extra spicy, please"
        assert order["customerFirstName"] == "Alice"
        assert order["requiresCommitment"] is False
        assert order["storeId"] == store.id

        await site.api.advance(store, created["id"], "paid", "processing", "ready")
        await until(lambda: staff.status(created["id"]) == "ready", message="ready")
        otp = await site.api.otp_of(site.alice, created["id"])
        raw = json.dumps(staff.frames)
        assert "pickupOtp" not in raw and otp not in raw
        assert staff.event_versions[created["id"]] == [1, 2, 3, 4]
    finally:
        await staff.close()


async def test_customers_never_receive_another_customers_orders(site: Site):
    store = await site.api.store(site.deployment.admin)
    alice_order = await site.api.place_order(site.alice, store)
    bob_order = await site.api.place_order(site.bob, store, specialInstructions="Bob's secret note")
    alice = await site.watcher(site.alice)
    staff = await site.watcher(store.staff)
    try:
        await alice.subscribe(orderIds=[alice_order["id"]])
        await staff.subscribe(storeId=store.id)
        await site.api.advance(store, bob_order["id"], "paid", "processing", "ready")
        await site.api.advance(store, alice_order["id"], "paid")
        await until(lambda: alice.status(alice_order["id"]) == "accepted", message="alice's event")
        await until(lambda: staff.status(bob_order["id"]) == "ready", message="bob's order at the store")
        await ping(alice)
        assert set(alice.orders) == {alice_order["id"]}
        raw = json.dumps(alice.frames)
        assert bob_order["id"] not in raw and "Bob" not in raw and "secret" not in raw
    finally:
        await alice.close()
        await staff.close()


async def test_unsubscribe_stops_events(site: Site):
    order = await site.api.place_order(site.alice, site.store)
    leaving, staying = await site.watcher(site.alice), await site.watcher(site.alice)
    try:
        for watcher in (leaving, staying):
            await watcher.subscribe(orderIds=[order["id"]])
        await leaving.send({"type": "unsubscribe", "orderIds": [order["id"]]})
        await ping(leaving)  # the unsubscribe is handled before the ping
        await site.api.advance(site.store, order["id"], "paid")
        await until(lambda: staying.version(order["id"]) == 2, message="the staying socket's event")
        await ping(leaving)
        assert leaving.events == []
    finally:
        await leaving.close()
        await staying.close()


async def test_redis_channels_are_reference_counted_per_process(site: Site):
    store = await site.api.store(site.deployment.admin)
    order = await site.api.place_order(site.alice, store)
    order_channel, store_channel = f"order:{order['id']}", f"store:{store.id}"

    def channels() -> set[str]:
        return redis_channels(site.redis, f"*{order['id']}") | redis_channels(site.redis, f"*{store.id}")

    assert channels() == set()
    first, second = await site.watcher(site.alice), await site.watcher(site.alice)
    staff = await site.watcher(store.staff)
    try:
        await first.subscribe(orderIds=[order["id"]])
        await second.subscribe(orderIds=[order["id"]])
        await staff.subscribe(storeId=store.id)
        assert channels() == {order_channel, store_channel}
        # One process, one Redis subscription per channel, however many sockets watch it.
        client = __import__("redis").Redis.from_url(site.redis.url)
        assert dict(client.pubsub_numsub(order_channel)) == {order_channel.encode(): 1}
        client.close()

        await first.send({"type": "unsubscribe", "orderIds": [order["id"]]})
        await ping(first)
        assert channels() == {order_channel, store_channel}
        await second.send({"type": "unsubscribe", "orderIds": [order["id"]]})
        await until(lambda: channels() == {store_channel}, message="the order channel to vanish")
        await staff.close()  # a disconnect releases what the socket watched
        await until(lambda: channels() == set(), message="the store channel to vanish")
    finally:
        for watcher in (first, second, staff):
            await watcher.close()


# --- refusals ----------------------------------------------------------------------------------------

async def test_another_users_order_and_an_unknown_order_get_the_same_forbidden_frame(site: Site):
    alices = await site.api.place_order(site.alice, site.store)
    bob = await site.watcher(site.bob)
    try:
        answers = [await bob.subscribe(orderIds=[target]) for target in
                   (alices["id"], str(ObjectId()), "not-an-id")]
        for answer in answers:
            assert answer["type"] == "error" and answer["code"] == "forbidden"
        assert len({json.dumps({k: v for k, v in a.items() if k != "id"}) for a in answers}) == 1
        # Mixing an own order with a foreign one refuses the whole frame.
        own = await site.api.place_order(site.bob, site.store)
        mixed = await bob.subscribe(orderIds=[own["id"], alices["id"]])
        assert mixed["code"] == "forbidden"
        await site.api.advance(site.store, alices["id"], "paid")
        await site.api.advance(site.store, own["id"], "paid")
        await ping(bob)
        assert not any(f["type"] in ("snapshot", "order") for f in bob.frames)
        assert bob.orders == {}
    finally:
        await bob.close()


async def test_only_that_stores_staff_may_watch_a_store(site: Site):
    foreign_order = await site.api.place_order(site.alice, site.other_store)
    staff = await site.watcher(site.store.staff)
    customer = await site.watcher(site.alice)
    try:
        refusals = [await staff.subscribe(storeId=site.other_store.id), await staff.subscribe(storeId=str(ObjectId())),
                    await staff.subscribe(orderIds=[foreign_order["id"]]),
                    await customer.subscribe(storeId=site.store.id)]
        for refusal in refusals:
            assert refusal["type"] == "error" and refusal["code"] == "forbidden", refusal
        assert refusals[0]["message"] == refusals[1]["message"]
        own_store = await staff.subscribe(storeId=site.store.id)
        assert own_store["type"] == "snapshot"
    finally:
        await staff.close()
        await customer.close()


async def test_malformed_frames_get_bad_request_and_the_socket_stays_open(site: Site):
    watcher = await site.watcher(site.alice)
    try:
        bad = ["not json", "[1, 2]", "42", json.dumps({"type": "dance", "id": 1}),
               json.dumps({"type": "subscribe", "orderIds": "abc", "id": 2}),
               json.dumps({"type": "subscribe", "orderIds": [1, 2], "id": 3}),
               json.dumps({"type": "subscribe", "orderIds": [], "id": 4}),
               json.dumps({"type": "subscribe", "storeId": 5, "id": 5}),
               json.dumps({"type": "subscribe", "id": 6}),
               json.dumps({"type": "unsubscribe", "orderIds": {"a": 1}, "id": 7}),
               b"\x00\x01binary"]
        for frame in bad:
            await watcher.send(frame)
        await until(lambda: len(watcher.frames) == len(bad), message="an answer to every bad frame")
        for frame in watcher.frames:
            assert frame["type"] == "error" and frame["code"] == "bad_request", frame
            assert isinstance(frame["message"], str) and frame["message"]
        assert [f.get("id") for f in watcher.frames[3:10]] == [1, 2, 3, 4, 5, 6, 7]
        await ping(watcher)
        assert not watcher.closed
    finally:
        await watcher.close()


async def test_a_frame_over_16_kib_closes_with_1009(site: Site):
    watcher = await site.watcher(site.alice)
    await watcher.send({"type": "ping", "pad": "x" * (16 * 1024)})
    assert await watcher.wait_closed() == 1009


async def test_more_than_20_frames_a_second_closes_with_1008(site: Site):
    watcher = await site.watcher(site.alice)
    for n in range(30):
        try:
            await watcher.send({"type": "ping", "id": n})
        except ConnectionClosed:
            break
    assert await watcher.wait_closed() == 1008
    assert len([f for f in watcher.frames if f["type"] == "pong"]) <= 20


# --- metrics --------------------------------------------------------------------------------------

async def test_metrics_count_sockets_subscriptions_and_events(site: Site):
    order = await site.api.place_order(site.alice, site.store)
    watcher = await site.watcher(site.alice)
    try:
        await watcher.subscribe(orderIds=[order["id"]])
        await site.api.advance(site.store, order["id"], "paid")
        await until(lambda: watcher.version(order["id"]) == 2)
        text = await metrics_of(site.server)
        assert metric(text, "orderpulse_sockets_open") >= 1
        assert metric(text, "orderpulse_subscriptions", '{kind="order"}') >= 1
        assert metric(text, "orderpulse_events_fanned_out_total") >= 1
        for name in ("orderpulse_events_coalesced_total", "orderpulse_events_dropped_total",
                     "orderpulse_broker_reconnects_total", "orderpulse_broker_channels",
                     "orderpulse_sse_streams_open"):
            assert f"\n{name} " in text, name
        opened = metric(text, "orderpulse_sockets_open")
        await watcher.close()
        await until(lambda: _sockets_open_below(site, opened), message="the socket gauge to fall")
    finally:
        await watcher.close()


async def _sockets_open_below(site: Site, value: float) -> bool:
    return metric(await metrics_of(site.server), "orderpulse_sockets_open") < value


async def test_a_store_snapshot_includes_orders_finished_in_the_last_hour(site: Site):
    store = await site.api.store(site.deployment.admin)
    cancelled = await site.api.place_order(site.alice, store)
    active = await site.api.place_order(site.bob, store)
    await site.api.advance(store, cancelled["id"], "paid", "cancelled")
    staff = await site.watcher(store.staff)
    try:
        snapshot = await staff.subscribe(storeId=store.id)
        assert [(o["id"], o["orderStatus"]) for o in snapshot["orders"]] == [
            (cancelled["id"], "cancelled"), (active["id"], "placed")]
    finally:
        await staff.close()
