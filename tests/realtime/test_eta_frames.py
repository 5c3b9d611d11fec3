"""Ready-time estimates pushed (issue 12): when a store's queue changes, the orders whose estimate
moved get one `eta` frame shortly after, on their own sockets, their customer's "My orders" and
their store's kitchen, and never on anyone else's."""

from __future__ import annotations

import pytest_asyncio

from server.domain.clock import parse_iso
from tests.realtime.conftest import Watcher, deployment_env, one_server
from tests.support import until


@pytest_asyncio.fixture(scope="module")
async def queue(mongo, redis_server, tmp_path_factory):
    env = deployment_env(mongo, redis_server, ETA_PUSH_SECONDS="0.2")
    async with one_server(tmp_path_factory.mktemp("eta"), env, redis_server) as started:
        yield started


def estimates_in(watcher: Watcher) -> dict[str, str]:
    """The newest estimate per order that this socket was sent."""
    newest: dict[str, str] = {}
    for frame in watcher.frames:
        if frame.get("type") == "eta":
            newest.update({entry["id"]: entry["estimatedReadyAt"] for entry in frame["orders"]})
    return newest


async def test_an_order_ahead_cancelled_pushes_the_earlier_estimates_to_who_may_see_them(queue):
    deployment, server, api, admin = queue
    store = await api.store(admin)
    asha, ravi = await api.customer("Asha Rao"), await api.customer("Ravi Kumar")
    first = await api.place_order(ravi, store)
    second = await api.place_order(ravi, store)
    mine = await api.place_order(asha, store)
    for order in (first, second, mine):
        await api.advance(store, order["id"], "paid")  # three accepted, two cooks: Asha's waits

    tracker, my_orders, kitchen, stranger = [await Watcher.open(server.ws_url, actor.access_token)
                                             for actor in (asha, asha, store.staff, ravi)]
    try:
        await tracker.subscribe(orderIds=[mine["id"]])
        await my_orders.subscribe(mine=True)
        await kitchen.subscribe(storeId=store.id)
        await stranger.subscribe(orderIds=[first["id"]])
        before = parse_iso((await api.get(f"/api/orders/{mine['id']}", asha)).json()["data"]["estimatedReadyAt"])

        cancel = await api.patch(f"/api/orders/{second['id']}/status", store.staff,
                                 json={"status": "cancelled", "reason": "Out of paneer"})
        assert cancel.status_code == 200, cancel.text
        # The payments' own pushes may still arrive first (with `before`): wait for the earlier one.
        def earlier(watcher: Watcher) -> bool:
            shown = estimates_in(watcher).get(mine["id"])
            return shown is not None and parse_iso(shown) < before  # one order fewer ahead

        await until(lambda: earlier(tracker), message="the tracking socket's earlier estimate")
        pushed = parse_iso(estimates_in(tracker)[mine["id"]])
        assert pushed == parse_iso((await api.get(f"/api/orders/{mine['id']}", asha)).json()["data"]["estimatedReadyAt"])
        await until(lambda: earlier(my_orders), message="My orders' estimate")
        await until(lambda: earlier(kitchen), message="the kitchen's estimate")
        frame = next(f for f in reversed(tracker.frames) if f.get("type") == "eta")
        assert frame == {"type": "eta", "storeId": store.id, "orders": [
            {"id": mine["id"], "estimatedReadyAt": frame["orders"][0]["estimatedReadyAt"]}]}

        # Ravi watches his own first order only: Asha's estimate is not his to see.
        await stranger.ask({"type": "ping"})
        assert mine["id"] not in estimates_in(stranger)

        # A declared delay moves every estimate of the store at once.
        delay = await api.patch(f"/api/stores/{store.id}/pace", store.staff, json={"delayMinutes": 10})
        assert delay.status_code == 200
        await until(lambda: parse_iso(estimates_in(tracker)[mine["id"]]) > pushed, message="the delayed estimate")
        assert (parse_iso(estimates_in(tracker)[mine["id"]]) - pushed).total_seconds() == 600
    finally:
        for watcher in (tracker, my_orders, kitchen, stranger):
            await watcher.close()
