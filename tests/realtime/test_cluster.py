"""Several server processes on one database and one Redis: cross-process fan-out, ordering,
and convergence through faults (Redis restart, a writer killed before publishing, a server
killed under its clients). Every fault test ends with each subscriber holding the database's
state of every order it watches."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import signal
import tempfile
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from tests.harness import RedisServer, ServerProcess
from tests.realtime.conftest import (
    Deployment,
    OrderBook,
    SseWatcher,
    Watcher,
    deployment_env,
    metric,
    metrics_of,
    redis_channels,
    restart_redis,
)
from tests.support import Actor, Api, StoreSetup, until


@dataclass
class Cluster:
    deployment: Deployment
    redis: RedisServer
    a: ServerProcess
    b: ServerProcess
    doomed: ServerProcess  # killed under its clients by one test
    failing: ServerProcess  # ORDERPULSE_FAILPOINT=after_write_before_publish
    api_a: Api
    api_b: Api
    store: StoreSetup
    alice: Actor
    bob: Actor

    async def truth(self, order_ids: list[str]) -> dict[str, tuple[int, str]]:
        """(version, status) of each order, read from the database through the REST API."""
        async def one(order_id: str) -> tuple[str, tuple[int, str]]:
            response = await self.api_a.get(f"/api/orders/{order_id}", self.store.staff)
            data = response.json()["data"]
            return order_id, (data["version"], data["orderStatus"])
        return dict(await asyncio.gather(*(one(o) for o in order_ids)))


def holds(book: OrderBook, truth: dict[str, tuple[int, str]]) -> bool:
    return all((book.version(o), book.status(o)) == state for o, state in truth.items())


async def converge(cluster: Cluster, books: list[OrderBook], order_ids: list[str], timeout: float = 5.0) -> None:
    truth = await cluster.truth(order_ids)
    try:
        await until(lambda: all(holds(book, truth) for book in books), timeout,
                    message=f"every subscriber to hold the database state of {len(order_ids)} orders")
    except AssertionError as failure:
        behind = {i: {o: (book.version(o), book.status(o)) for o, state in truth.items()
                      if (book.version(o), book.status(o)) != state} for i, book in enumerate(books)}
        seen = {i: [(f.get("type"), [(o["id"][-4:], o["version"]) for o in f.get("orders", [f.get("order") or {}]) if o.get("id") in truth and o.get("id") in behind[i]])
                    for f in book.snapshots + book.events] for i, book in enumerate(books) if behind[i]}
        raise AssertionError(f"{failure}; database: {truth}; subscribers behind: {behind}; seen {seen}") from None
    for book in books:
        assert book.regressions == []


@pytest_asyncio.fixture(scope="module")
async def cluster(mongo):
    root = Path(tempfile.mkdtemp(prefix="orderpulse-cluster-"))
    redis_server = RedisServer(root / "redis").start()
    deployment = Deployment(root, deployment_env(mongo, redis_server), redis_server)
    a, b, doomed = deployment.server(), deployment.server(), deployment.server()
    failing = deployment.server(ORDERPULSE_FAILPOINT="after_write_before_publish")
    await deployment.start(a, b, doomed, failing)
    try:
        admin = await deployment.create_admin(a)
        api_a, api_b = deployment.api(a), deployment.api(b)
        store = await api_a.store(admin)
        alice, bob = await api_a.customer("Alice Iyer"), await api_b.customer("Bob Das")
        yield Cluster(deployment, redis_server, a, b, doomed, failing, api_a, api_b, store, alice, bob)
    finally:
        await deployment.close()
        redis_server.kill()
        shutil.rmtree(root, ignore_errors=True)


async def test_a_change_made_through_one_process_reaches_sockets_on_another(cluster: Cluster):
    order = await cluster.api_a.place_order(cluster.alice, cluster.store)
    alice_on_b = await Watcher.open(cluster.b.ws_url, cluster.alice.access_token)
    staff_on_b = await Watcher.open(cluster.b.ws_url, cluster.store.staff.access_token)
    try:
        await alice_on_b.subscribe(orderIds=[order["id"]])
        await staff_on_b.subscribe(storeId=cluster.store.id)
        created = await cluster.api_a.place_order(cluster.bob, cluster.store, specialInstructions="from A")
        await until(lambda: created["id"] in staff_on_b.orders, message="an order created on A at B's store socket")
        assert staff_on_b.events[-1]["event"] == "created"
        assert staff_on_b.orders[created["id"]]["specialInstructions"] == "from A"

        await cluster.api_a.advance(cluster.store, order["id"], "paid", "processing")
        await until(lambda: alice_on_b.version(order["id"]) == 3, message="A's changes at B's customer socket")
        assert alice_on_b.event_versions[order["id"]] == [2, 3]
        # B listens to Redis only for what its own sockets watch.
        assert {f"order:{order['id']}", f"store:{cluster.store.id}"} <= redis_channels(cluster.redis)
        assert f"order:{created['id']}" not in redis_channels(cluster.redis)
    finally:
        await alice_on_b.close()
        await staff_on_b.close()


async def test_200_rapid_transitions_across_50_orders_arrive_in_version_order_at_every_subscriber(cluster: Cluster):
    apis = itertools.cycle([cluster.api_a, cluster.api_b])
    orders = await asyncio.gather(*(next(apis).place_order(cluster.alice, cluster.store) for _ in range(50)))
    ids = [o["id"] for o in orders]
    watchers = [await Watcher.open(server.ws_url, actor.access_token)
                for server in (cluster.a, cluster.b) for actor in (cluster.store.staff, cluster.alice)]
    try:
        for watcher in watchers[0::2]:
            await watcher.subscribe(storeId=cluster.store.id)
        for watcher in watchers[1::2]:
            await watcher.subscribe(orderIds=ids)

        async def run_through(index: int, order_id: str) -> None:
            # Each order's steps in sequence, alternating processes; all orders at once.
            for step, api in zip(("paid", "processing", "ready", "cancelled"),
                                 itertools.islice(itertools.cycle([cluster.api_a, cluster.api_b]), index % 2, None)):
                await api.advance(cluster.store, order_id, step)

        await asyncio.gather(*(run_through(i, order_id) for i, order_id in enumerate(ids)))
        await converge(cluster, watchers, ids)
        for watcher in watchers:
            for order_id in ids:
                versions = watcher.event_versions[order_id]
                assert versions == sorted(set(versions)), (order_id, versions)
                assert watcher.status(order_id) == "cancelled" and watcher.version(order_id) == 5
    finally:
        for watcher in watchers:
            await watcher.close()


async def test_subscribers_converge_when_redis_restarts_mid_stream(cluster: Cluster):
    orders = [await cluster.api_a.place_order(cluster.bob, cluster.store) for _ in range(6)]
    ids = [o["id"] for o in orders]
    watchers = [await Watcher.open(server.ws_url, actor.access_token)
                for server in (cluster.a, cluster.b) for actor in (cluster.store.staff, cluster.bob)]
    stream = SseWatcher().start(f"{cluster.b.url}/api/stores/{cluster.store.id}/events", cluster.store.staff.access_token)
    reconnects_before = [metric(await metrics_of(s), "orderpulse_broker_reconnects_total") for s in (cluster.a, cluster.b)]
    try:
        for watcher in watchers[0::2]:
            await watcher.subscribe(storeId=cluster.store.id)
        for watcher in watchers[1::2]:
            await watcher.subscribe(orderIds=ids)
        await until(lambda: stream.snapshots, message="the SSE snapshot")
        watchers.append(stream)  # an SSE stream is resynchronised like a socket
        snapshots_before = [len(w.snapshots) for w in watchers]

        await cluster.api_a.advance(cluster.store, ids[0], "paid")
        await cluster.api_b.advance(cluster.store, ids[1], "paid")
        await until(lambda: all(w.version(ids[1]) == 2 for w in watchers), message="events before the restart")

        cluster.redis.kill()
        # Changes while Redis is down: written, not published; their outbox marks stay.
        await cluster.api_a.advance(cluster.store, ids[0], "processing")
        await cluster.api_b.advance(cluster.store, ids[2], "paid", "processing")
        restart_redis(cluster.redis)
        # Changes right after the restart, while the hubs are still reconnecting.
        await cluster.api_b.advance(cluster.store, ids[3], "paid")
        await cluster.api_a.advance(cluster.store, ids[4], "cancelled")

        await until(lambda: all(len(w.snapshots) > n for w, n in zip(watchers, snapshots_before)), timeout=8,
                    message="a fresh snapshot at every socket after the reconnect")
        await converge(cluster, watchers, ids, timeout=8)
        for server, before in zip((cluster.a, cluster.b), reconnects_before):
            assert metric(await metrics_of(server), "orderpulse_broker_reconnects_total") > before
        # Both hubs listen again to exactly what their sockets watch, and live events flow.
        assert f"store:{cluster.store.id}" in redis_channels(cluster.redis)
        await cluster.api_a.advance(cluster.store, ids[5], "paid")
        await converge(cluster, watchers, ids)
        # Both hubs hold these orders again (they were forgotten at the loss): a new socket's snapshot
        # comes from what they hold, and it is the database's state.
        truth = await cluster.truth(ids)
        for server in (cluster.a, cluster.b):
            late = await Watcher.open(server.ws_url, cluster.bob.access_token)
            watchers.append(late)
            await late.subscribe(orderIds=ids)
            assert holds(late, truth)
    finally:
        await stream.stop()
        for watcher in watchers:
            if isinstance(watcher, Watcher):
                await watcher.close()


async def test_a_change_whose_writer_dies_before_publishing_is_republished_by_another_process(cluster: Cluster):
    order = await cluster.api_a.place_order(cluster.alice, cluster.store)
    alice_on_a = await Watcher.open(cluster.a.ws_url, cluster.alice.access_token)
    staff_on_b = await Watcher.open(cluster.b.ws_url, cluster.store.staff.access_token)
    failing = cluster.deployment.api(cluster.failing)
    relays = [s for s in (cluster.a, cluster.b, cluster.doomed) if s.process.poll() is None]
    republished = sum([metric(await metrics_of(s), "orderpulse_outbox_republished_total") for s in relays])
    try:
        await alice_on_a.subscribe(orderIds=[order["id"]])
        await staff_on_b.subscribe(storeId=cluster.store.id)

        # An update: the process writes version 2, then dies before publishing it.
        with pytest.raises(httpx.HTTPError):
            await failing.patch(f"/api/orders/{order['id']}/payment-status", cluster.store.staff,
                                json={"paymentStatus": "success"})
        assert cluster.failing.wait_exit() == -signal.SIGKILL
        assert (await cluster.truth([order["id"]]))[order["id"]] == (2, "accepted")
        await converge(cluster, [alice_on_a, staff_on_b], [order["id"]], timeout=4)
        assert alice_on_a.event_versions[order["id"]] == [2]

        # A creation: the new order reaches the store's subscribers only through the relay.
        await asyncio.to_thread(cluster.failing.start)
        response = await failing.checkout(cluster.alice, cluster.store)
        token = response.json()["data"]["checkoutToken"]
        with pytest.raises(httpx.HTTPError):
            await failing.post("/api/orders", cluster.alice, json={"checkoutToken": token})
        assert cluster.failing.wait_exit() == -signal.SIGKILL
        created = (await cluster.api_a.post("/api/orders", cluster.alice, json={"checkoutToken": token})).json()
        new_id = created["data"]["id"]  # the same checkout answers with the order the dead process wrote
        await until(lambda: new_id in staff_on_b.orders, timeout=4, message="the relayed creation")
        assert staff_on_b.events[-1]["event"] == "created"
        await converge(cluster, [staff_on_b], [order["id"], new_id])
        total = sum([metric(await metrics_of(s), "orderpulse_outbox_republished_total") for s in relays])
        assert total >= republished + 2
    finally:
        await alice_on_a.close()
        await staff_on_b.close()


async def test_clients_of_a_killed_process_reconnect_to_another_and_get_a_snapshot(cluster: Cluster):
    order = await cluster.api_a.place_order(cluster.bob, cluster.store)
    bob = await Watcher.open(cluster.doomed.ws_url, cluster.bob.access_token)
    staff = await Watcher.open(cluster.doomed.ws_url, cluster.store.staff.access_token)
    await bob.subscribe(orderIds=[order["id"]])
    await staff.subscribe(storeId=cluster.store.id)

    cluster.doomed.kill()
    assert await bob.wait_closed() == 1006 and await staff.wait_closed() == 1006
    await cluster.api_b.advance(cluster.store, order["id"], "paid", "processing")  # while they are away

    bob_again = await Watcher.open(cluster.a.ws_url, cluster.bob.access_token)
    staff_again = await Watcher.open(cluster.b.ws_url, cluster.store.staff.access_token)
    try:
        snapshot = await bob_again.subscribe(orderIds=[order["id"]])
        assert [(o["version"], o["orderStatus"]) for o in snapshot["orders"]] == [(3, "processing")]
        board = await staff_again.subscribe(storeId=cluster.store.id)
        assert order["id"] in {o["id"] for o in board["orders"]}
        await cluster.api_a.advance(cluster.store, order["id"], "ready")
        await converge(cluster, [bob_again, staff_again], [order["id"]])
    finally:
        await bob_again.close()
        await staff_again.close()
