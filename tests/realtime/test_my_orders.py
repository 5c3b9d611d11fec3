""""My orders" over `/ws`: `{"type": "subscribe", "mine": true}` against a real server process on Redis."""

from __future__ import annotations

import asyncio
import uuid

from pymongo import MongoClient

from server.domain.clock import utcnow
from tests.realtime.conftest import Site, redis_channels
from tests.support import until


def partner_client(env: dict[str, str]) -> str:
    """A registered partner app, as `orderpulse client create` leaves it in the database."""
    client_id = f"opc_test_{uuid.uuid4().hex}"
    with MongoClient(env["MONGODB_URL"]) as client:
        client[env["MONGODB_DATABASE"]].client_apps.insert_one(
            {"client_id": client_id, "name": "Campus SuperApp", "is_active": True, "created_at": utcnow()})
    return client_id


async def test_mine_snapshots_own_orders_then_streams_new_ones_and_their_changes_and_nobody_elses(site: Site):
    carol, dev = await asyncio.gather(site.api.customer("Carol Nair"), site.api.customer("Dev Shah"))
    earlier = await site.api.place_order(carol, site.store)
    await site.api.place_order(dev, site.store)
    watcher = await site.watcher(carol)
    try:
        snapshot = await watcher.subscribe(mine=True)
        assert snapshot["type"] == "snapshot"
        assert [o["id"] for o in snapshot["orders"]] == [earlier["id"]]
        assert "items" not in snapshot["orders"][0]  # the customer's view, not the kitchen's

        later = await site.api.place_order(carol, site.other_store)
        await until(lambda: later["id"] in watcher.orders, message="the new order")
        created = next(f for f in watcher.events if f["order"]["id"] == later["id"])
        assert created["event"] == "created"
        await site.api.advance(site.store, earlier["id"], "paid", "processing")
        await until(lambda: watcher.status(earlier["id"]) == "processing", message="the status change")

        await site.api.place_order(dev, site.store)
        answer = await watcher.ask({"type": "ping"})  # everything queued before the pong has arrived
        assert answer["type"] == "pong"
        assert set(watcher.orders) == {earlier["id"], later["id"]}
        assert watcher.regressions == []
    finally:
        await watcher.close()


async def test_an_order_placed_by_a_partner_app_reaches_my_orders(site: Site):
    erin = await site.api.customer("Erin Paul")
    client_id = await asyncio.to_thread(partner_client, site.deployment.env)
    watcher = await site.watcher(erin)
    try:
        assert (await watcher.subscribe(mine=True))["orders"] == []
        session = await site.api.checkout(erin, site.store)
        response = await site.api.post("/v1/order", erin, headers={"X-Client-ID": client_id},
                                       json={"checkoutToken": session.json()["data"]["checkoutToken"]})
        assert response.status_code == 201, response.text
        await until(lambda: len(watcher.orders) == 1, message="the partner's order")
        assert next(iter(watcher.orders.values()))["orderStatus"] == "placed"
    finally:
        await watcher.close()


async def test_mine_must_be_true_and_alone_and_unsubscribing_releases_the_channel(site: Site):
    fay = await site.api.customer("Fay Roy")
    watcher = await site.watcher(fay)
    try:
        for frame in ({"mine": False}, {"mine": True, "storeId": site.store.id},
                      {"mine": True, "orderIds": [str(uuid.uuid4())]}):
            answer = await watcher.subscribe(**frame)
            assert (answer["type"], answer["code"]) == ("error", "bad_request"), frame
            assert answer["message"] == "Give mine: true alone, without orderIds or storeId."
        await watcher.subscribe(mine=True)
        channel = f"customer:{fay.id}"
        assert channel in redis_channels(site.redis, "customer:*")
        await watcher.send({"type": "unsubscribe", "mine": True})
        await until(lambda: channel not in redis_channels(site.redis, "customer:*"), message="the channel to go")
    finally:
        await watcher.close()
