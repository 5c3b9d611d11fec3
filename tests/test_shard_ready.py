"""Orders are ready to be sharded by `{store_id: 1}` (README, *MongoDB at scale*): every
write to one order names its store, unique keys are unique per store, and a UPI transaction id
stays unique across every store through its claim in the unsharded `transaction_ids`."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from bson import ObjectId
from pymongo import ASCENDING, IndexModel, monitoring
from pymongo.errors import DuplicateKeyError

from server.domain.clock import iso_z
from server.models import Order
from server.services import order_store
from tests.clock import ManualClock
from tests.deadline_helpers import cancelled_by_enforcer, no_show

TAKEN = {"success": False, "message": "This transaction ID is already linked to another order. "
                                      "Please check the ID and try again."}


class _OrderWrites(monitoring.CommandListener):
    """The filter of every write the driver sends to `orders` of one database: (command, filter, multi)."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.writes: list[tuple[str, dict, bool]] = []

    def started(self, event) -> None:
        command, name = event.command, event.command_name
        if event.database_name != self.database or command.get(name) != "orders":
            return
        if name == "update":
            self.writes += [(name, dict(one["q"]), bool(one.get("multi"))) for one in command["updates"]]
        elif name == "delete":
            self.writes += [(name, dict(one["q"]), one.get("limit") != 1) for one in command["deletes"]]
        elif name == "findAndModify":
            self.writes.append((name, dict(command["query"]), False))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def _pay(api, store, order_id: str, transaction: str):
    return await api.patch(f"/api/orders/{order_id}/payment-status", store.staff,
                           json={"paymentStatus": "success", "transactionId": transaction})


async def test_every_write_to_one_order_names_its_store(api_factory, database_name):
    writes = _OrderWrites(database_name)
    monitoring.register(writes)  # global: the app's clients are created after this, and it keeps to this database
    clock = ManualClock()
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store, customer, admin = await api.store(), await api.customer(), await api.admin()
    response = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"itemsPerSlot": 50})
    assert response.status_code == 200, response.text
    # Checkout with a transaction id, then accept, ready, wrong codes and the right one.
    order = await api.place_order(customer, store, transaction_id="UPISHARD0001")
    await api.advance(store, order["id"], "paid", "processing", "ready")
    for wrong in ("000000", "000001"):
        response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"otp": wrong})
        assert response.status_code == 400, response.text
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff,
                              json={"otp": await api.otp_of(customer, order["id"])})
    assert response.status_code == 200, response.text
    # A payment with a transaction id, a store's cancel, a customer's cancel.
    paid = await api.place_order(customer, store)
    assert (await _pay(api, store, paid["id"], "UPISHARD0002")).status_code == 200
    response = await api.patch(f"/api/orders/{paid['id']}/status", store.staff, json={"status": "cancelled"})
    assert response.status_code == 200, response.text
    mine = await api.place_order(customer, store)
    assert (await api.post(f"/api/orders/{mine['id']}/cancel", customer)).status_code == 200
    # A store closing for payments moves an unpaid order's deadline; deadlines cancel; a no-show is cleared.
    unpaid = await api.place_order(customer, store)
    response = await api.patch(f"/api/stores/{store.id}/pace", store.staff,
                               json={"closesAt": iso_z(clock.now() + timedelta(seconds=60))})
    assert response.status_code == 200, response.text
    clock.advance(61)
    await cancelled_by_enforcer(api, customer, unpaid["id"])
    response = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"closesAt": None})
    assert response.status_code == 200, response.text
    missed = await no_show(api, store, customer, clock)
    response = await api.post(f"/api/admin/orders/{missed['id']}/clear-no-show", admin, json={"reason": "Was here"})
    assert response.status_code == 200, response.text
    # The outbox relay and the webhook marks.
    await api.runtime.relay.relay_once()
    stored = await Order.get(order["id"])
    assert stored is not None
    await order_store.clear_webhook_marks(stored)
    await api.runtime.slots.releases_done()

    single = [(name, query) for name, query, multi in writes.writes if not multi]
    assert {name for name, _ in single} == {"update", "findAndModify"}
    assert [(name, query) for name, query in single if "store_id" not in query] == []
    assert all(query["store_id"] == {"$eq": store.id} for _, query in single)
    # Only a deadline pass writes many orders at once, by their ids or its batch: scatter by design.
    many = [query for _, query, multi in writes.writes if multi]
    assert many and all(set(query) == {"deadline_batch"} or set(query["_id"]) == {"$in"} for query in many)


async def test_a_transaction_id_is_refused_for_an_order_of_another_store(api):
    first, second, customer = await api.store(), await api.store(), await api.customer()
    await api.place_order(customer, first, transaction_id="UPIBOTHSTORES1")
    token = (await api.checkout(customer, second)).json()["data"]["checkoutToken"]
    response = await api.post("/api/orders", customer, json={"checkoutToken": token, "transactionId": "upibothstores1"})
    assert (response.status_code, response.json()) == (409, TAKEN)
    other = await api.place_order(customer, second)
    response = await _pay(api, second, other["id"], "UPIBOTHSTORES1")
    assert (response.status_code, response.json()) == (409, TAKEN)
    # The order that carries it may be paid with it, and a payment's new id frees the checkout's.
    placed = await api.place_order(customer, first, transaction_id="UPIREPLACED01")
    assert (await _pay(api, first, placed["id"], "UPIREPLACED02")).status_code == 200
    assert (await _pay(api, second, other["id"], "UPIREPLACED01")).status_code == 200


@pytest.mark.parametrize("way", ["checkout", "payment"])
async def test_two_stores_claiming_one_transaction_id_at_once_one_wins(api, way):
    stores = [await api.store(), await api.store()]
    customer = await api.customer()
    for round_ in range(4):
        transaction = f"UPIRACE{way.upper()}{round_}"
        if way == "checkout":
            tokens = [(await api.checkout(customer, store)).json()["data"]["checkoutToken"] for store in stores]
            responses = await asyncio.gather(*(api.post("/api/orders", customer, json={
                "checkoutToken": token, "transactionId": transaction}) for token in tokens))
        else:
            orders = [await api.place_order(customer, store) for store in stores]
            responses = await asyncio.gather(*(_pay(api, store, order["id"], transaction)
                                               for store, order in zip(stores, orders)))
        assert sorted(response.status_code for response in responses) == [200 if way == "payment" else 201, 409]
        assert [response.json() for response in responses if response.status_code == 409] == [TAKEN]
        carriers = await Order.find({"transaction_id": transaction}).to_list()
        assert len(carriers) == 1


async def test_one_checkout_placed_twice_at_once_with_a_transaction_id_answers_its_one_order(api):
    store, customer = await api.store(), await api.customer()
    token = (await api.checkout(customer, store)).json()["data"]["checkoutToken"]
    # The first placing of the checkout has claimed the id and not yet inserted its order.
    first = Order.model_construct(id=ObjectId(), store_id=store.id,
                                  checkout_id=api.runtime.tokens.verify_checkout(token)["jti"])
    assert await order_store.claim_transaction("UPITWICE0001", first, api.runtime.clock.now()) == "claimed"
    response = await api.post("/api/orders", customer, json={"checkoutToken": token, "transactionId": "UPITWICE0001"})
    assert response.status_code == 201, response.text
    # The first one's insert then fails on the checkout: its claim is made to name the order placed.
    await order_store.release_transaction("UPITWICE0001", first)
    claim = await Order.get_pymongo_collection().database["transaction_ids"].find_one({"_id": "upi:UPITWICE0001"})
    assert claim["order_id"] == response.json()["data"]["id"]


async def test_a_claim_whose_order_never_carried_it_is_taken_over_after_the_lease(api_factory, clock):
    api = await api_factory(clock=clock)
    first, second, customer = await api.store(), await api.store(), await api.customer()
    # A process claimed the id for an order of the first store, then stopped before writing it.
    left = await api.place_order(customer, first)
    stored = await Order.get(left["id"])
    assert stored is not None
    assert await order_store.claim_transaction("UPISTALECLAIM1", stored, clock.now()) == "claimed"
    other = await api.place_order(customer, second)
    response = await _pay(api, second, other["id"], "UPISTALECLAIM1")
    assert (response.status_code, response.json()) == (409, TAKEN)  # its write may still be on its way
    clock.advance(order_store.CLAIM_LEASE.total_seconds() + 1)
    response = await _pay(api, second, other["id"], "UPISTALECLAIM1")
    assert response.status_code == 200, response.text
    claim = await Order.get_pymongo_collection().database["transaction_ids"].find_one({"_id": "upi:UPISTALECLAIM1"})
    assert (claim["order_id"], claim["store_id"]) == (other["id"], second.id)
    # Carried, it is never stale.
    clock.advance(order_store.CLAIM_LEASE.total_seconds() + 1)
    assert (await _pay(api, first, left["id"], "UPISTALECLAIM1")).json() == TAKEN


async def test_unique_keys_refuse_a_duplicate_in_one_store_only(api):
    first, second, customer = await api.store(), await api.store(), await api.customer()
    placed = await Order.get((await api.place_order(customer, first))["id"])
    assert placed is not None
    for key in ("order_number", "payment_reference", "checkout_id"):
        fresh = {"order_number": f"ORD-X-{key}", "payment_reference": f"REF{key}", "checkout_id": f"co-{key}"}
        copy = placed.model_copy(update={**fresh, "id": ObjectId(), key: getattr(placed, key)})
        with pytest.raises(DuplicateKeyError):
            await order_store.insert(copy)
        elsewhere = copy.model_copy(update={"id": ObjectId(), "store_id": second.id})
        await order_store.insert(elsewhere)


async def test_a_database_from_before_has_its_unique_indexes_replaced_and_transaction_ids_claimed(api):
    store, other, customer = await api.store(), await api.store(), await api.customer()
    order = await api.place_order(customer, store, transaction_id="UPIBEFORE0001")
    orders = Order.get_pymongo_collection()
    claims = orders.database["transaction_ids"]
    await claims.delete_many({})
    await orders.drop_indexes()
    await orders.create_indexes([IndexModel([(key, ASCENDING)], name=f"{key}_unique", unique=True)
                                 for key in ("order_number", "payment_reference", "checkout_id", "transaction_id")])
    await order_store.create_indexes()
    keys = [(dict(index["key"]), bool(index.get("unique"))) async for index in await orders.list_indexes()]
    assert [key for key, unique in keys if unique and len(key) == 1 and "_id" not in key] == []
    for key in ("order_number", "payment_reference", "checkout_id"):
        assert ({"store_id": 1, key: 1}, True) in keys
    assert (await claims.find_one({"_id": "upi:UPIBEFORE0001"}))["order_id"] == order["id"]
    elsewhere = await api.place_order(customer, other)
    assert (await _pay(api, other, elsewhere["id"], "UPIBEFORE0001")).json() == TAKEN
    await order_store.create_indexes()  # a second start-up finds nothing to replace
