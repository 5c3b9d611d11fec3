"""Order caps that regulate themselves (issue 27): items per 15-minute slot, counted atomically in
MongoDB; a full slot defers checkouts to the next one with room, the store reopens by itself as its
queue drains, a manual pause still wins, and bad caps are refused."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
from pymongo import AsyncMongoClient

from server.domain.clock import as_utc, utcnow
from server.domain.slots import SLOT, slot_key, slot_start
from server.models import Counter, Order
from tests.clock import ManualClock
from tests.harness import ServerProcess, create_admin, drop_database
from tests.support import PASSWORD, Api, until


def mid_slot_clock() -> ManualClock:
    """A clock in the middle of a slot, so no test's checkouts straddle two slots by chance."""
    now = utcnow()
    return ManualClock(slot_start(now) + timedelta(minutes=7))


async def capped(api, items_per_slot: int, menu=None, admin=None):
    store = await api.store(admin, menu=menu)
    response = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"itemsPerSlot": items_per_slot})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["itemsPerSlot"] == items_per_slot
    return store


async def test_the_eleventh_item_is_offered_the_next_slot(api_factory):
    clock = mid_slot_clock()
    api = await api_factory(clock=clock)
    store = await capped(api, 10)
    customer = await api.customer()
    placed = [await api.place_order(customer, store, [(0, 3)]) for _ in range(3)]  # 9 items
    session = (await api.checkout(customer, store, [(1, 1)])).json()["data"]
    assert session["slot"] == {"deferred": False, "readyAround": None}
    placed.append(await api.place_order(customer, store, [(1, 1)]))  # the 10th item: the slot is full
    session = (await api.checkout(customer, store, [(2, 1)])).json()["data"]
    next_slot = slot_start(clock.now()) + SLOT
    assert session["slot"]["deferred"] is True
    assert session["slot"]["readyAround"] == (next_slot + SLOT).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    eleventh = await api.place_order(customer, store, [(2, 1)])
    stored = await Order.get(eleventh["id"])
    assert stored.slot_deferred is True and stored.slot_start == next_slot and stored.slot_weight == 1
    assert not any([(await Order.get(order["id"])).slot_deferred for order in placed])
    detail = (await api.get(f"/api/orders/{eleventh['id']}", customer)).json()["data"]
    assert detail["slotDeferred"] is True
    # Its estimate is the later slot's end, not the store's usual few minutes.
    assert detail["estimatedReadyAt"] >= (next_slot + SLOT).strftime("%Y-%m-%dT%H:%M:%S")
    shown = (await api.get(f"/api/stores/{store.id}")).json()["data"]["capacity"]
    assert shown["slotItems"] == 10 and shown["deferring"] is True


async def test_items_weigh_their_cap_weight_and_an_order_larger_than_a_slot_is_refused(api_factory):
    api = await api_factory(clock=mid_slot_clock())
    store = await api.store()
    response = await api.post(f"/api/stores/{store.id}/menu", store.staff,
                              json={"name": "Biryani Handi", "price": 300, "capWeight": 4})
    assert response.status_code == 201 and response.json()["data"]["capWeight"] == 4
    store.menu.append(response.json()["data"])
    await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"itemsPerSlot": 10})
    customer = await api.customer()
    await api.place_order(customer, store, [(3, 2)])  # 2 handis weigh 8
    session = (await api.checkout(customer, store, [(3, 1)])).json()["data"]
    assert session["slot"]["deferred"] is True  # 8 + 4 > 10
    assert (await api.checkout(customer, store, [(0, 2)])).json()["data"]["slot"]["deferred"] is False
    response = await api.checkout(customer, store, [(3, 3)])
    assert response.status_code == 400
    name = (await api.get(f"/api/stores/{store.id}")).json()["data"]["name"]
    assert response.json()["message"] == (f"This order is larger than {name} takes in one "
                                          "15-minute slot (10 items). Please order fewer items.")


async def test_when_every_slot_is_full_checkout_is_refused_and_the_store_reopens_as_orders_are_picked_up(
        api_factory):
    clock = mid_slot_clock()
    api = await api_factory(clock=clock)
    store = await capped(api, 2)
    customer = await api.customer()
    orders = [await api.place_order(customer, store, [(0, 2)]) for _ in range(4)]  # four slots, each full
    assert [(await Order.get(order["id"])).slot_deferred for order in orders] == [False, True, True, True]
    response = await api.checkout(customer, store, [(0, 1)])
    assert response.status_code == 400
    assert "is fully booked for the next 60 minutes" in response.json()["message"]
    assert (await api.get(f"/api/stores/{store.id}")).json()["data"]["capacity"]["nextFreeSlot"] is None
    # The first order is made and picked up: its items leave the current slot, without anyone unpausing.
    first = orders[0]["id"]
    await api.advance(store, first, "paid", "processing", "ready")
    otp = await api.otp_of(customer, first)
    assert (await api.post(f"/api/orders/{first}/verify-otp", store.staff, json={"otp": otp})).status_code == 200

    async def reopened() -> bool:
        capacity = (await api.get(f"/api/stores/{store.id}")).json()["data"]["capacity"]
        return capacity["slotItems"] == 0 and capacity["deferring"] is False

    await until(reopened, message="the current slot to have room again")
    session = (await api.checkout(customer, store, [(0, 2)])).json()["data"]
    assert session["slot"]["deferred"] is False
    # Released once only, however often the order is published again.
    api.runtime.slots.order_changed(await Order.get(first))
    await api.runtime.slots.releases_done()
    counter = await Counter.get_pymongo_collection().find_one({"_id": f"slot:{store.id}:"
                                                                      f"{slot_start(clock.now()):%Y%m%dT%H%M}"})
    assert counter["seq"] == 0
    # A manual pause still wins over a slot with room.
    await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"paused": True})
    assert (await api.checkout(customer, store, [(0, 1)])).status_code == 400
    await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"paused": False, "itemsPerSlot": None})
    data = (await api.get(f"/api/stores/{store.id}")).json()["data"]
    assert data["itemsPerSlot"] is None and data["capacity"] is None
    assert (await api.checkout(customer, store, [(0, 5)])).json()["data"]["slot"] is None


async def test_a_cancelled_order_gives_its_items_back(api_factory):
    api = await api_factory(clock=mid_slot_clock())
    store = await capped(api, 3)
    customer = await api.customer()
    order = await api.place_order(customer, store, [(0, 3)])
    assert (await api.checkout(customer, store, [(0, 1)])).json()["data"]["slot"]["deferred"] is True
    await api.post(f"/api/orders/{order['id']}/cancel", customer)

    async def room() -> bool:
        return (await api.checkout(customer, store, [(0, 1)])).json()["data"]["slot"]["deferred"] is False

    await until(room, message="the cancelled order's items to be given back")


async def test_bad_cap_values_are_400s_and_change_nothing(api):
    store = await api.store()
    await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"itemsPerSlot": 12})
    for bad in (0, -1, 1001, 2.5, "10", True, [], {}):
        response = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"itemsPerSlot": bad})
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["message"] == ("itemsPerSlot must be a whole number of items from 1 to 1000, "
                                              "or null for no cap.")
    for bad in (0, 21, 1.5, "2", None):
        response = await api.post(f"/api/stores/{store.id}/menu", store.staff,
                                  json={"name": "Thali", "price": 90, "capWeight": bad})
        assert response.status_code == 400, (bad, response.text)
    response = await api.patch(f"/api/menu/{store.menu[0]['id']}", store.staff, json={"capWeight": 0})
    assert response.status_code == 400
    assert response.json()["message"] == "capWeight must be a whole number from 1 to 20."
    assert (await api.get(f"/api/stores/{store.id}")).json()["data"]["itemsPerSlot"] == 12
    customer = await api.customer()
    response = await api.patch(f"/api/stores/{store.id}/pace", customer, json={"itemsPerSlot": 5})
    assert response.status_code == 403


async def test_concurrent_checkouts_never_pass_the_cap(api_factory):
    clock = mid_slot_clock()
    api = await api_factory(clock=clock)
    store = await capped(api, 5)
    customers = [await api.customer() for _ in range(6)]
    tokens = []
    for index in range(26):
        customer = customers[index % len(customers)]
        session = await api.checkout(customer, store, [(0, 1)])
        tokens.append((customer, session.json()["data"]["checkoutToken"]))
    answers = await asyncio.gather(*(api.post("/api/orders", customer, json={"checkoutToken": token})
                                     for customer, token in tokens))
    codes = sorted(answer.status_code for answer in answers)
    assert codes == [201] * 20 + [409] * 6  # four slots of five
    orders = await Order.find({"store_id": store.id}).to_list()
    per_slot: dict = {}
    for order in orders:
        per_slot[order.slot_start] = per_slot.get(order.slot_start, 0) + order.slot_weight
    assert sorted(per_slot.values()) == [5, 5, 5, 5]
    refused = [answer.json()["message"] for answer in answers if answer.status_code == 409]
    assert all("fully booked" in message for message in refused)


async def test_checkouts_on_two_processes_at_once_never_pass_the_cap(mongo, redis_server, tmp_path):
    """Two server processes on one database: the conditional increments are the only arbiter."""
    database = f"t_caps_{uuid.uuid4().hex[:8]}"
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database, "REDIS_URL": redis_server.url}
    servers = [ServerProcess(env, tmp_path / f"s{i}").start() for i in range(2)]
    try:
        clients = [httpx.AsyncClient(base_url=server.url, timeout=30) for server in servers]
        api = Api(clients[0])
        create_admin(env, email="caps-admin@campus.test", password=PASSWORD, name="Caps Admin")
        store = await capped(api, 3, admin=await api.login("caps-admin@campus.test"))
        customers = [await api.customer() for _ in range(4)]
        carts = []
        for index in range(20):
            customer = customers[index % len(customers)]
            session = await api.checkout(customer, store, [(0, 1)])
            carts.append((customer, session.json()["data"]["checkoutToken"]))
        answers = await asyncio.gather(*(
            clients[index % 2].post("/api/orders", json={"checkoutToken": token}, headers=customer.headers)
            for index, (customer, token) in enumerate(carts)))
        created = [answer for answer in answers if answer.status_code == 201]
        refused = [answer for answer in answers if answer.status_code != 201]
        assert all(answer.status_code == 409 and "fully booked" in answer.json()["message"] for answer in refused)
        per_slot, counters = await slots_of(mongo.url, database, store.id)
        assert sum(per_slot.values()) == len(created) and all(count <= 3 for count in per_slot.values())
        assert counters == per_slot  # each counter holds exactly the items its orders claimed
        assert len(created) >= 12  # four slots of three; more only if a quarter hour turned meanwhile
    finally:
        for client in clients:
            await client.aclose()
        for server in servers:
            server.stop()
        drop_database(mongo.url, database)


async def slots_of(url: str, database: str, store_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """Items per slot as the store's orders claimed them, and as the slot counters hold them."""
    client = AsyncMongoClient(url)
    try:
        per_slot: dict[str, int] = {}
        async for order in client[database]["orders"].find({"store_id": store_id}):
            key = slot_key(store_id, as_utc(order["slot_start"]))
            per_slot[key] = per_slot.get(key, 0) + order["slot_weight"]
        counters = {document["_id"]: int(document["seq"]) for document in
                    await client[database]["counters"].find({"_id": {"$in": list(per_slot)}}).to_list(None)}
        return per_slot, counters
    finally:
        await client.close()
