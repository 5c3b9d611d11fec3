"""A kitchen's next move of an order this process just wrote starts from the copy its last
compare-and-set returned (`WrittenOrders`, server/services/order_queries.py), without reading the
order again; a stale copy (another process changed the order) only costs a retry on the order as
read, and nobody else's order is changed or shown through it."""

from __future__ import annotations

from pymongo import monitoring

from server.models import Order
from server.services.order_queries import WrittenOrders
from tests.support import metric_value


class _OrderReads(monitoring.CommandListener):
    """The reads of one order by id, and the compare-and-sets, sent to `orders` of one database."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.reads: list[str] = []
        self.writes: list[str] = []

    def started(self, event) -> None:
        command, name = event.command, event.command_name
        if event.database_name != self.database or command.get(name) != "orders":
            return
        if name == "find" and set(command.get("filter", {})) == {"_id"}:
            self.reads.append(str(command["filter"]["_id"]))
        elif name == "findAndModify":
            self.writes.append(str(command["query"]["_id"]))

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def _metrics(api) -> str:
    return (await api.get("/metrics")).text


def _from_copy(text: str, outcome: str) -> float:
    return metric_value(text, "orderpulse_change_from_copy_total", outcome=outcome)


async def test_moving_an_order_along_reads_it_once(api_factory, database_name):
    listener = _OrderReads(database_name)
    monitoring.register(listener)  # global: the app's clients are created after this
    api = await api_factory()
    store, customer = await api.store(), await api.customer()
    order = await api.place_order(customer, store)
    before = await _metrics(api)
    listener.reads.clear()
    response = await api.advance(store, order["id"], "paid", "processing", "ready")
    assert response.json()["data"]["orderStatus"] == "ready"
    # The payment reads the order; the two moves after it start from the payment's result.
    assert listener.reads.count(order["id"]) == 1
    assert listener.writes.count(order["id"]) == 3
    after = await _metrics(api)
    assert _from_copy(after, "written") - _from_copy(before, "written") == 2
    assert _from_copy(after, "retried") == _from_copy(before, "retried")
    stored = await Order.get(order["id"])
    assert stored is not None and stored.version == 4


async def test_a_copy_made_stale_by_another_process_is_retried_on_the_order_as_read(api_factory, database_name):
    # Two apps on one database: two server processes (without a broker between them).
    here = await api_factory()
    there = await api_factory()
    store, customer = await here.store(), await here.customer()
    moved = await here.place_order(customer, store)
    await here.advance(store, moved["id"], "paid")  # here now holds it at version 2
    await there.advance(store, moved["id"], "processing")  # version 3, written there
    before = await _metrics(here)
    response = await here.advance(store, moved["id"], "ready")
    assert response.json()["data"]["orderStatus"] == "ready"
    after = await _metrics(here)
    assert _from_copy(after, "retried") - _from_copy(before, "retried") == 1
    stored = await Order.get(moved["id"])
    assert stored is not None and (stored.order_status.value, stored.version) == ("ready", 4)

    # Cancelled elsewhere: the copy says "accepted", the order as read refuses the move, as it
    # would have without a copy.
    cancelled = await here.place_order(customer, store)
    await here.advance(store, cancelled["id"], "paid")
    response = await there.patch(f"/api/orders/{cancelled['id']}/status", store.staff, json={"status": "cancelled"})
    assert response.status_code == 200, response.text
    response = await here.patch(f"/api/orders/{cancelled['id']}/status", store.staff, json={"status": "processing"})
    assert response.status_code == 409, response.text
    stored = await Order.get(cancelled["id"])
    assert stored is not None and (stored.order_status.value, stored.version) == ("cancelled", 3)


async def test_another_stores_staff_get_the_same_refusal_for_an_order_held_or_not(api):
    store, other, customer = await api.store(), await api.store(), await api.customer()
    held = await api.place_order(customer, store)
    await api.advance(store, held["id"], "paid")  # this process now holds its copy
    not_held = await api.place_order(customer, store)
    assert api.runtime.orders.written.get(held["id"]) is not None
    assert api.runtime.orders.written.get(not_held["id"]) is None
    answers = []
    for order in (held, not_held):
        response = await api.patch(f"/api/orders/{order['id']}/status", other.staff, json={"status": "processing"})
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1] and answers[0][0] == 403
    # Nor does the customer move it through the copy.
    response = await api.patch(f"/api/orders/{held['id']}/status", customer, json={"status": "processing"})
    assert response.status_code == 403
    stored = await Order.get(held["id"])
    assert stored is not None and (stored.order_status.value, stored.version) == ("accepted", 2)


async def test_the_copies_are_bounded_and_a_partners_order_is_not_kept(api):
    store, customer = await api.store(), await api.customer()
    placed = [await api.place_order(customer, store) for _ in range(3)]
    orders = [await Order.get(order["id"]) for order in placed]
    written = WrittenOrders(size=2)
    for order in orders:
        assert order is not None
        written.keep(order)
    assert [written.get(order["id"]) is not None for order in placed] == [False, True, True]
    # A partner's order carries webhook events the relay clears without a new version.
    partners = orders[2].model_copy(update={"partner_client_id": "opc_wallet"})  # type: ignore[union-attr]
    written.keep(partners)
    assert written.get(placed[2]["id"]) is None
