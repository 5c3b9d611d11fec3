"""Two server processes on a real Redis Cluster (3 masters, 3 replicas, sharded pub/sub), and a
dead-but-open broker connection on plain Redis.

Channels spread over the shards and each process keeps one listening connection per master;
events cross processes whichever shard carries them; a master killed while changes flow, or a
slot moved to another master, ends with every subscriber holding the database's state; a frozen
Redis is noticed by the liveness probe within BROKER_LIVENESS_SECONDS, `/readyz` says so, and
the sockets resynchronise once it thaws."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from bson import ObjectId
from redis.crc import key_slot

from tests.harness import RedisServer, ServerProcess
from tests.realtime.conftest import Deployment, OrderBook, Watcher, copy_orders, deployment_env, metric, metrics_of
from tests.realtime.redis_cluster import RedisClusterServer, require_redis_server_7
from tests.support import Actor, Api, StoreSetup, until

LIVENESS = 2.0  # BROKER_LIVENESS_SECONDS for these tests: the bound every detection is held to
CLUSTER_ENV = {"BROKER_LIVENESS_SECONDS": str(LIVENESS), "OUTBOX_RELAY_AFTER_SECONDS": "1"}


@dataclass
class OnCluster:
    redis: RedisClusterServer
    deployment: Deployment
    a: ServerProcess
    b: ServerProcess
    api_a: Api
    api_b: Api
    stores: list[StoreSetup]
    customers: list[Actor]

    async def truth(self, store: StoreSetup, order_ids: list[str]) -> dict[str, tuple[int, str]]:
        async def one(order_id: str) -> tuple[str, tuple[int, str]]:
            data = (await self.api_a.get(f"/api/orders/{order_id}", store.staff)).json()["data"]
            return order_id, (data["version"], data["orderStatus"])
        return dict(await asyncio.gather(*(one(o) for o in order_ids)))


def holds(book: OrderBook, truth: dict[str, tuple[int, str]]) -> bool:
    return all((book.version(o), book.status(o)) == state for o, state in truth.items())


async def converge(on: OnCluster, store: StoreSetup, books: list[OrderBook], order_ids: list[str],
                   timeout: float) -> None:
    truth = await on.truth(store, order_ids)
    await until(lambda: all(holds(book, truth) for book in books), timeout,
                message=f"every subscriber to hold the database state of {len(order_ids)} orders")
    for book in books:
        assert book.regressions == []


def shard_channels(redis: RedisClusterServer) -> dict[str, set[str]]:
    """What each live master carries (`PUBSUB SHARDCHANNELS`)."""
    carried = {}
    for name in redis.masters():
        with redis.node(name).client() as client:
            carried[name] = {c.decode() for c in client.execute_command("PUBSUB", "SHARDCHANNELS")}
    return carried


def pubsub_connections(redis: RedisClusterServer) -> dict[str, int]:
    """Connections in pub/sub mode on each live master (`CLIENT LIST TYPE pubsub`)."""
    counts = {}
    for name in redis.masters():
        with redis.node(name).client() as client:
            counts[name] = len(client.execute_command("CLIENT", "LIST", "TYPE", "pubsub").decode().strip().splitlines())
    return counts


@pytest_asyncio.fixture(scope="module")
async def on_cluster(mongo):
    require_redis_server_7()
    root = Path(tempfile.mkdtemp(prefix="orderpulse-rediscluster-"))
    redis = await asyncio.to_thread(RedisClusterServer(root / "redis").start)
    env = deployment_env(mongo, None, REDIS_URL=redis.url, **CLUSTER_ENV)
    deployment = Deployment(root, env)
    a, b = deployment.server(), deployment.server()
    try:
        await deployment.start(a, b)
        admin = await deployment.create_admin(a)
        api_a, api_b = deployment.api(a), deployment.api(b)
        stores = [await api_a.store(admin) for _ in range(3)]
        customers = [await api_b.customer(f"Student {n}") for n in range(6)]
        yield OnCluster(redis, deployment, a, b, api_a, api_b, stores, customers)
    finally:
        await deployment.close()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


async def test_channels_spread_over_every_shard_on_one_connection_per_master_per_process(on_cluster: OnCluster):
    on = on_cluster
    # The naming rule: channels named by ObjectIds fall on every master, near a third each.
    masters = on.redis.masters()
    for prefix in ("order", "store", "customer"):
        spread = {name: 0 for name in masters}
        for _ in range(300):
            spread[on.redis.owner(f"{prefix}:{ObjectId()}")] += 1
        assert all(60 <= count <= 140 for count in spread.values()), (prefix, spread)

    # A realistic run: 90 orders at three stores watched on both processes.
    store = on.stores[0]
    first = await on.api_a.place_order(on.customers[0], store)
    ids = [first["id"], *await asyncio.to_thread(copy_orders, on.deployment.env, first["id"], 89)]
    boards = [(await Watcher.open(server.ws_url, s.staff.access_token), s) for server in (on.a, on.b)
              for s in on.stores]
    watchers = [watcher for watcher, _ in boards]
    customers = [await Watcher.open(server.ws_url, on.customers[0].access_token) for server in (on.a, on.b)]
    try:
        for watcher, board_store in boards:
            await watcher.subscribe(storeId=board_store.id)
        for customer in customers:
            await customer.subscribe(orderIds=ids)
        wanted = {f"order:{o}" for o in ids} | {f"store:{s.id}" for s in on.stores}
        await until(lambda: wanted <= set().union(*shard_channels(on.redis).values()), timeout=5,
                    message="every watched channel subscribed on the cluster")
        carried = shard_channels(on.redis)
        # Each channel is carried by the master that owns its slot (CLUSTER KEYSLOT), and orders land on all three.
        for name, channels in carried.items():
            for channel in channels & wanted:
                assert on.redis.owner(channel) == name, channel
            assert any(c.startswith("order:") for c in channels), (name, len(channels))
        # However many channels: one listening connection per master and process.
        assert pubsub_connections(on.redis) == {name: 2 for name in masters}
    finally:
        for watcher in [*watchers, *customers]:
            await watcher.close()


async def _actors_on_three_shards(on: OnCluster) -> tuple[StoreSetup, Actor, dict]:
    """A store, a customer and an order of theirs whose channels are on three different masters."""
    store = on.stores[1]
    store_shard = on.redis.owner(f"store:{store.id}")
    customer = next(c for c in on.customers if on.redis.owner(f"customer:{c.id}") != store_shard)
    taken = {store_shard, on.redis.owner(f"customer:{customer.id}")}
    for _ in range(40):
        order = await on.api_a.place_order(customer, store)
        if on.redis.owner(f"order:{order['id']}") not in taken:
            return store, customer, order
    raise AssertionError("40 orders, none on the third master")


async def test_order_store_and_customer_events_cross_processes_on_three_different_shards(on_cluster: OnCluster):
    on = on_cluster
    store, customer, order = await _actors_on_three_shards(on)
    channels = [f"order:{order['id']}", f"store:{store.id}", f"customer:{customer.id}"]
    assert len({on.redis.owner(c) for c in channels}) == 3
    by_order = await Watcher.open(on.b.ws_url, customer.access_token)
    mine = await Watcher.open(on.b.ws_url, customer.access_token)
    staff = await Watcher.open(on.b.ws_url, store.staff.access_token)
    try:
        await by_order.subscribe(orderIds=[order["id"]])
        await mine.subscribe(mine=True)
        await staff.subscribe(storeId=store.id)
        await on.api_a.advance(store, order["id"], "paid", "processing")
        for watcher in (by_order, mine, staff):
            await until(lambda: watcher.version(order["id"]) == 3, message="A's changes at every socket on B")
            assert watcher.event_versions[order["id"]] == [2, 3]
        created = await on.api_a.place_order(customer, store)
        await until(lambda: created["id"] in staff.orders and created["id"] in mine.orders,
                    message="an order created on A at B's store and customer sockets")
    finally:
        for watcher in (by_order, mine, staff):
            await watcher.close()


async def test_a_slot_moved_to_another_master_is_followed_without_losing_a_change(on_cluster: OnCluster):
    on = on_cluster
    store = on.stores[2]
    order = await on.api_a.place_order(on.customers[1], store)
    staff = await Watcher.open(on.b.ws_url, store.staff.access_token)
    try:
        await staff.subscribe(storeId=store.id)
        channel = f"store:{store.id}"
        source = on.redis.owner(channel)
        target = next(name for name in on.redis.masters() if name != source)
        snapshots = len(staff.snapshots)
        reconnects = metric(await metrics_of(on.b), "orderpulse_broker_reconnects_total")
        await asyncio.to_thread(on.redis.migrate_slot, key_slot(channel.encode()), target)
        await on.api_a.advance(store, order["id"], "paid")
        # B heard Redis drop the channel (`sunsubscribe`), re-subscribed on the new owner and resynchronised.
        await until(lambda: channel in shard_channels(on.redis)[target], timeout=LIVENESS + 2,
                    message="the store channel re-subscribed on the slot's new master")
        await until(lambda: len(staff.snapshots) > snapshots, message="a fresh snapshot after the move")
        assert metric(await metrics_of(on.b), "orderpulse_broker_reconnects_total") > reconnects
        await on.api_b.advance(store, order["id"], "processing")
        await converge(on, store, [staff], [order["id"]], timeout=5)
        assert staff.version(order["id"]) == 3
    finally:
        await staff.close()


async def test_subscribers_converge_within_5_s_of_a_failover_while_changes_flow(on_cluster: OnCluster):
    on = on_cluster
    store = on.stores[0]
    orders = [await on.api_a.place_order(on.customers[0], store) for _ in range(12)]
    ids = [o["id"] for o in orders]
    watchers = [await Watcher.open(server.ws_url, store.staff.access_token) for server in (on.a, on.b)]
    watchers += [await Watcher.open(server.ws_url, on.customers[0].access_token) for server in (on.a, on.b)]
    acknowledged: dict[str, int] = {}
    try:
        for watcher in watchers[:2]:
            await watcher.subscribe(storeId=store.id)
        for watcher in watchers[2:]:
            await watcher.subscribe(orderIds=ids)
        await until(lambda: all(len(w.snapshots) for w in watchers), message="the first snapshots")
        # The master carrying the store channel dies, so both processes lose a shard they read.
        victim = on.redis.owner(f"store:{store.id}")
        apis = itertools.cycle([on.api_a, on.api_b])

        async def flow(*steps: str) -> None:
            for step in steps:
                for order_id in ids:
                    response = await next(apis).advance(store, order_id, step)
                    acknowledged[order_id] = response.json()["data"]["version"]

        flowing = asyncio.create_task(flow("paid", "processing"))
        await until(lambda: len(acknowledged) >= 3, message="changes flowing")
        on.redis.kill(victim)
        await until(lambda: on.redis.promoted(victim), timeout=15, message="a replica promoted")
        promoted_at = time.monotonic()
        await flowing
        await flow("ready")  # and more changes after the promotion
        assert all(version == 4 for version in acknowledged.values())
        left = 5 - (time.monotonic() - promoted_at)
        truth = await on.truth(store, ids)
        # Nothing acknowledged is lost: the database has every change, and every socket ends there.
        assert {o: v for o, (v, _) in truth.items()} == acknowledged
        await until(lambda: all(holds(w, truth) for w in watchers), timeout=max(left, 0.1),
                    message="every subscriber to hold the database's state within 5 s of the promotion")
        for watcher in watchers:
            assert watcher.regressions == []
        for server in (on.a, on.b):
            assert (await httpx.AsyncClient().get(f"{server.url}/readyz")).status_code == 200
    finally:
        for watcher in watchers:
            await watcher.close()


async def test_a_frozen_master_is_noticed_by_its_shards_probe_and_the_sockets_resync(on_cluster: OnCluster):
    on = on_cluster
    store = on.stores[1]
    order = await on.api_a.place_order(on.customers[2], store)
    watchers = [await Watcher.open(server.ws_url, store.staff.access_token) for server in (on.a, on.b)]
    victim = on.redis.owner(f"store:{store.id}")
    try:
        for watcher in watchers:
            await watcher.subscribe(storeId=store.id)
        silent = [metric(await metrics_of(s), "orderpulse_broker_silent_connections_total") for s in (on.a, on.b)]
        snapshots = [len(w.snapshots) for w in watchers]
        # Its sockets stay open and nothing comes through them: only the probe can tell.
        on.redis.freeze(victim)
        frozen_at = time.monotonic()
        for server, before in zip((on.a, on.b), silent):
            await until(lambda: _silent_since(server, before), timeout=LIVENESS + 1.5, interval=0.05,
                        message="the frozen master's connection noticed by its probe")
        assert time.monotonic() - frozen_at <= LIVENESS + 1.5
        # A change while it is frozen (its replica may or may not have taken over meanwhile), then the thaw.
        await on.api_b.advance(store, order["id"], "paid", "processing")
        on.redis.thaw(victim)
        await until(lambda: all(len(w.snapshots) > n for w, n in zip(watchers, snapshots)), timeout=10,
                    message="a fresh snapshot at every socket")
        await converge(on, store, watchers, [order["id"]], timeout=5)
    finally:
        on.redis.thaw(victim)
        for watcher in watchers:
            await watcher.close()


async def _silent_since(server: ServerProcess, before: float) -> bool:
    return metric(await metrics_of(server), "orderpulse_broker_silent_connections_total") > before


@pytest_asyncio.fixture
async def frozen_redis_site(mongo):
    root = Path(tempfile.mkdtemp(prefix="orderpulse-frozen-"))
    redis = RedisServer(root / "redis").start()
    deployment = Deployment(root, deployment_env(mongo, redis, BROKER_LIVENESS_SECONDS=str(LIVENESS),
                                                 READINESS_TIMEOUT_SECONDS="0.5"), redis)
    server = deployment.server()
    try:
        await deployment.start(server)
        admin = await deployment.create_admin(server)
        api = deployment.api(server)
        yield deployment, server, api, await api.store(admin), await api.customer("Gita Pai")
    finally:
        if redis.process is not None:
            redis.process.send_signal(signal.SIGCONT)
        await deployment.close()
        redis.kill()
        shutil.rmtree(root, ignore_errors=True)


async def _readyz(server: ServerProcess) -> dict:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.url}/readyz", timeout=5)).json()


async def test_a_frozen_redis_is_noticed_within_the_liveness_bound_and_the_sockets_resync(frozen_redis_site):
    deployment, server, api, store, customer = frozen_redis_site
    order = await api.place_order(customer, store)
    watcher = await Watcher.open(server.ws_url, customer.access_token)
    try:
        await watcher.subscribe(orderIds=[order["id"]])
        silent_before = metric(await metrics_of(server), "orderpulse_broker_silent_connections_total")
        assert metric(await metrics_of(server), "orderpulse_broker_up") == 1

        # The socket stays open, the process is alive, and nothing comes through: a partition's symptoms.
        deployment.redis.process.send_signal(signal.SIGSTOP)
        frozen_at = time.monotonic()
        await until(lambda: _broker_down(server), timeout=LIVENESS + 1.5, interval=0.05,
                    message="the dead listener noticed by the liveness probe")
        assert time.monotonic() - frozen_at <= LIVENESS + 1.5
        assert metric(await metrics_of(server), "orderpulse_broker_silent_connections_total") > silent_before
        readiness = await _readyz(server)
        assert (readiness["status"], readiness["broker"]) == ("unavailable", False)
        snapshots = len(watcher.snapshots)

        # A change while Redis is frozen is stored; its event waits for the resync.
        changed = asyncio.create_task(api.advance(store, order["id"], "paid"))
        await until(lambda: changed.done(), timeout=15, message="the change stored while Redis is frozen")
        deployment.redis.process.send_signal(signal.SIGCONT)
        thawed_at = time.monotonic()
        await until(lambda: _broker_back(server), timeout=LIVENESS + 3, message="the broker back after the thaw")
        assert time.monotonic() - thawed_at <= LIVENESS + 3
        await until(lambda: len(watcher.snapshots) > snapshots, message="a fresh snapshot after the resync")
        await until(lambda: watcher.version(order["id"]) == 2, message="the change made while frozen")
        assert (await _readyz(server))["broker"] is True
        await api.advance(store, order["id"], "processing")
        await until(lambda: watcher.version(order["id"]) == 3, message="live events again")
        assert watcher.regressions == []
    finally:
        await watcher.close()


async def _broker_down(server: ServerProcess) -> bool:
    return metric(await metrics_of(server), "orderpulse_broker_up") == 0


async def _broker_back(server: ServerProcess) -> bool:
    return metric(await metrics_of(server), "orderpulse_broker_up") == 1 and (await _readyz(server))["broker"]


def test_a_cluster_url_names_nodes_as_host_port():
    from server.config import Settings

    assert Settings(redis_url="redis+cluster://10.0.0.1:7000,10.0.0.2:7001").redis_url
    assert Settings(redis_url="rediss+cluster://user:pw@node-a:7000").redis_url
    with pytest.raises(ValueError, match=r"host:port\[,host:port…\]"):
        Settings(redis_url="redis+cluster://10.0.0.1,10.0.0.2:7001")


def test_an_unreachable_cluster_is_one_line_without_its_password(tmp_path, mongo):
    from server.embedded_mongo import free_loopback_port
    from tests.test_startup import _run, _the_one_error_line

    nodes = f"127.0.0.1:{free_loopback_port()},127.0.0.1:{free_loopback_port()}"
    result = _run(tmp_path, "serve", REDIS_URL=f"redis+cluster://:hunter22@{nodes}", MONGODB_URL=mongo.url,
                  MONGODB_DATABASE="unreachable_cluster", PORT=str(free_loopback_port()), LOG_LEVEL="warning")
    line = _the_one_error_line(result)
    assert line.startswith(f"error: Cannot use Redis at redis+cluster://{nodes}: ") and line.endswith("Check REDIS_URL.")
    assert "hunter22" not in result.stderr + result.stdout
