"""The catalog event: every menu or store change publishes the store's whole menu on
`catalog:{storeId}`, and `GET /api/stores/{id}/menu/events` streams it to any page (no sign-in)."""

from __future__ import annotations

import json

import httpx
import orjson
from bson import ObjectId

from server.models import MenuItem, Store
from server.services import catalog
from tests.realtime.conftest import Site, SseWatcher, redis_channels
from tests.support import Api, until


def menus(stream: SseWatcher) -> list[tuple[int, dict]]:
    return [(int(event_id), json.loads(data)) for event_id, event, data in stream.messages if event == "menu"]


def item(menu: dict, item_id: str) -> dict:
    return next(entry for entry in menu["menu"] if entry["id"] == item_id)


async def test_a_menu_stream_sends_the_whole_menu_then_each_change_with_a_higher_revision(site: Site):
    store = await site.api.store(site.deployment.admin)
    burger = store.menu[0]["id"]
    stream = SseWatcher().start(f"{site.server.url}/api/stores/{store.id}/menu/events", token="")
    try:
        await until(lambda: menus(stream), message="the first menu")
        assert stream.http_status == 200
        revision, first = menus(stream)[0]
        assert first["store"]["id"] == store.id and first["store"]["isActive"] is True
        assert {entry["name"] for entry in first["menu"]} == {"Paneer Burger", "French Fries", "Cold Coffee"}

        response = await site.api.patch(f"/api/menu/{burger}", store.staff, json={"isAvailable": False})
        assert response.status_code == 200
        await until(lambda: item(menus(stream)[-1][1], burger)["isAvailable"] is False, message="sold out")
        response = await site.api.patch(f"/api/menu/{burger}", store.staff, json={"price": 135, "isAvailable": True})
        await until(lambda: item(menus(stream)[-1][1], burger)["price"] == 135, message="the new price")
        response = await site.api.post(f"/api/stores/{store.id}/menu", store.staff, json={"name": "Masala Chai", "price": 20})
        await until(lambda: len(menus(stream)[-1][1]["menu"]) == 4, message="the added item")

        revisions = [r for r, _ in menus(stream)]
        assert revisions == sorted(set(revisions)) and revisions[0] == revision
        assert item(menus(stream)[-1][1], burger)["isAvailable"] is True
        assert f"catalog:{store.id}" in redis_channels(site.redis, "catalog:*")
    finally:
        await stream.stop()
    await until(lambda: f"catalog:{store.id}" not in redis_channels(site.redis, "catalog:*"),
                message="the channel to be released when the page leaves")


async def test_a_menu_stream_of_an_unknown_store_is_404_with_the_stores_message(site: Site):
    async with httpx.AsyncClient() as client:
        for store_id in (str(ObjectId()), "not-an-id"):
            response = await client.get(f"{site.server.url}/api/stores/{store_id}/menu/events")
            assert (response.status_code, response.json()["message"]) == (404, "Store not found."), store_id


async def test_publish_store_changed_carries_a_closed_store_to_listeners(api: Api):
    store = await api.store()
    received: list[dict] = []
    channel = f"catalog:{store.id}"
    broker = api.runtime.broker
    listener = lambda _channel, payload: received.append(orjson.loads(payload))  # noqa: E731
    await broker.subscribe(channel, listener)
    try:
        await Store.get_pymongo_collection().update_one({"_id": ObjectId(store.id)}, {"$set": {"is_active": False}})
        await catalog.publish_store_changed(broker, store.id)
        await until(lambda: received, message="the catalog message")
        assert received[-1]["store"]["isActive"] is False
        assert len(received[-1]["menu"]) == 3
        assert received[-1]["revision"] > 0
    finally:
        await broker.unsubscribe(channel, listener)


async def test_after_a_broker_reconnect_menu_watchers_get_a_change_they_missed(api: Api):
    store = await api.store()
    feed = api.runtime.hub.catalog
    watcher = await feed.watch(store.id)
    try:
        first = orjson.loads(await watcher.next(1))
        # A change whose message was lost while the broker was away: written, revision taken, never published.
        fries = store.menu[1]["id"]
        await MenuItem.get_pymongo_collection().update_one({"_id": ObjectId(fries)}, {"$set": {"is_available": False}})
        await catalog.menu_snapshot(store.id, bump=True)
        api.runtime.broker._connection_changed(True)  # what the engine reports once it is back
        payload = await until(lambda: watcher.next(0.05), message="the menu read again after the reconnect")
        again = orjson.loads(payload)
        assert again["revision"] == first["revision"] + 1
        assert next(i for i in again["menu"] if i["id"] == fries)["isAvailable"] is False
    finally:
        await feed.unwatch(watcher)


async def test_watching_an_unknown_store_leaves_nothing_subscribed(api: Api):
    broker = api.runtime.broker
    for store_id in (str(ObjectId()), "not-an-id"):
        assert await api.runtime.hub.catalog.watch(store_id) is None
        assert f"catalog:{store_id}" not in broker._listeners
