"""A rolling restart under load: 1,000 sockets over two server processes sharing MongoDB and Redis,
changes flowing; each process is stopped (SIGTERM) and started again in turn. Every socket ends
equal to MongoDB, order by order, and the drained restart's reconnects are spread: the busiest
second of clients setting out to reconnect from the process stopped with WS_DRAIN_SECONDS=8 is
compared with that of the one stopped with WS_DRAIN_SECONDS=0, in the same test."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import random
import time

import httpx
import pytest
import redis
from bson import ObjectId
from pymongo import MongoClient
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from tests.realtime.conftest import Deployment, OrderBook, copy_orders, deployment_env
from tests.support import Api, until

pytestmark = pytest.mark.timeout(240)

SOCKETS = 1000
ORDERS = 30
DRAIN_SECONDS = 8
# Changes are made at this pace (a load, not a wait) so that they flow through both restarts.
CHANGE_INTERVAL_SECONDS = 0.05
# What the bundled pages add to a server's retryAfterMs (static/js/live.js).
CLIENT_JITTER_SECONDS = 0.5
ROOMY = {"WS_MAX_SOCKETS_PER_STAFF_ACCOUNT": "5000", "WS_SUBSCRIBES_PER_SECOND": "100000",
         "WS_SUBSCRIBES_BURST": "100000", "WS_SUBSCRIBE_READS_PER_SECOND": "100000",
         "WS_SUBSCRIBE_READS_BURST": "100000", "HTTP_MAX_CONNECTIONS": "5000"}


class Roamer(OrderBook):
    """A client as REALTIME.md asks: after a `reconnect` frame it waits `retryAfterMs` (plus the
    pages' jitter), connects to a server that is up (as a balancer would send it), subscribes again."""

    def __init__(self, urls: list[str], token: str, order_ids: list[str], log: list[tuple[float, int]],
                 comebacks: list[float]) -> None:
        super().__init__()
        self.urls, self.token, self.order_ids, self.log = urls, token, order_ids, log
        # When this client planned to come back after a socket ended: when the `reconnect` frame
        # arrived plus its delay and jitter (when it actually woke depends on this test process's
        # own lag as well, with 1,000 sockets reading every event).
        self.comebacks = comebacks
        self.server: str | None = None  # the URL of the server it is connected to
        self.connected = asyncio.Event()
        self.retry_after: list[int] = []
        self.close_codes: list[int] = []
        # (monotonic time, server URL) of every connection, and per order (time, kind, version) of
        # every frame that carried it: printed for the sockets left behind when the test fails.
        self.connections: list[tuple[float, str]] = []
        self.seen: dict[str, list[tuple[float, str, int]]] = collections.defaultdict(list)
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        first = True
        while True:
            for index in random.sample(range(len(self.urls)), len(self.urls)):
                try:
                    connection = await connect(f"{self.urls[index]}?token={self.token}", open_timeout=20,
                                               max_size=None, ping_interval=None, close_timeout=1)
                except (OSError, InvalidHandshake, TimeoutError):
                    continue
                if not first:
                    self.log.append((time.monotonic(), index))
                first = False
                await self._serve(connection, self.urls[index])
                break
            else:
                await asyncio.sleep(random.uniform(0.1, 0.3))  # every server refused: back off, jittered

    async def _serve(self, connection, url: str) -> None:
        self.server = url
        self.connections.append((time.monotonic(), url))
        retry_ms = None
        back_at = 0.0
        try:
            await connection.send(json.dumps({"type": "subscribe", "orderIds": self.order_ids}))
            async for message in connection:
                frame = json.loads(message)
                if frame.get("type") == "reconnect":
                    retry_ms = frame["retryAfterMs"]
                    self.retry_after.append(retry_ms)
                    back_at = time.monotonic() + retry_ms / 1000 + random.random() * CLIENT_JITTER_SECONDS
                    continue
                self.take(frame)
                now = time.monotonic()
                if frame.get("type") == "order":
                    self.seen[frame["order"]["id"]].append((now, "event", frame["version"]))
                elif frame.get("type") == "snapshot":
                    for entry in frame["orders"]:
                        self.seen[entry["id"]].append((now, "snapshot", entry["version"]))
                if frame.get("type") == "snapshot":
                    self.connected.set()
        except ConnectionClosed:
            pass
        finally:
            self.server = None
            self.connected.clear()
            received = connection.protocol.close_rcvd
            self.close_codes.append(received.code if received is not None else 1006)
        self.comebacks.append(back_at or time.monotonic())
        if retry_ms is not None:
            await asyncio.sleep(max(0.0, back_at - time.monotonic()))

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)


def explain_behind(roamers: list[Roamer], behind: list, stored: dict[str, int], env: dict[str, str],
                   deployment: Deployment, started_at: float) -> None:
    """What a failure needs to be understood: for an order left behind, how each socket behind got
    what it holds (connections and frames, in seconds since the changes began), what a socket that
    is not behind saw of it, the order's stored state, and what the servers logged about the broker."""
    order_id = collections.Counter(b[2] for b in behind).most_common(1)[0][0]
    late = [r for r in roamers if r.version(order_id) != stored[order_id]]
    fine = [r for r in roamers if r.version(order_id) == stored[order_id]]

    def story(roamer: Roamer) -> str:
        connections = [(round(t - started_at, 2), url.rsplit(":", 1)[-1]) for t, url in roamer.connections]
        frames = [(round(t - started_at, 2), kind, version) for t, kind, version in roamer.seen[order_id]]
        return f"connections {connections} frames {frames}"

    print(f"order {order_id}: stored v{stored[order_id]}; {len(late)} sockets behind, {len(fine)} not")
    for roamer in late[:3]:
        print("  behind:", story(roamer))
    for roamer in fine[:2]:
        print("  not behind:", story(roamer))
    print("  last connections of the sockets behind:",
          sorted(round(r.connections[-1][0] - started_at, 1) for r in late)[:: max(1, len(late) // 10)])
    with MongoClient(env["MONGODB_URL"]) as client:
        document = client[env["MONGODB_DATABASE"]].orders.find_one({"_id": ObjectId(order_id)})
    print("  stored:", {k: document.get(k) for k in ("version", "order_status", "updated_at", "outbox_at")})
    # Redis's own count of the processes listening to the order: 2 when both servers do.
    listening = redis.Redis.from_url(env["REDIS_URL"]).pubsub_numsub(f"order:{order_id}")
    print("  Redis subscribers of its channel:", listening)
    for index, server in enumerate(deployment.servers):
        with contextlib.suppress(Exception):
            text = httpx.get(f"{server.url}/metrics", timeout=5).text
            print(f"  server {index} metrics:", [line for line in text.splitlines() if not line.startswith("#") and "_created" not in line and any(
                name in line for name in ("broker_", "events_", "outbox_", "snapshot_orders", "subscriptions"))])
        lines = [line for line in server.log_path.read_text().splitlines()
                 if any(word in line for word in ("publish", "Redis", "broker", "relay", "resync", "Traceback"))]
        print(f"  server {index} log ({len(lines)} lines about the broker):", lines[-8:])


def busiest_second(times: list[float]) -> int:
    """The most reconnects within any one second."""
    times = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] > 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


# This test failed now and then under a full suite (a CI run: 71 sockets on one server, one version
# behind on one order). A cause that fits it, found and fixed: a subscribe that was the second watcher of an order channel read
# the order before Redis had confirmed the channel another subscribe had asked for; it is played out
# exactly in tests/realtime/test_shared_channel_confirmed.py.
async def test_a_rolling_restart_loses_no_change_and_the_drain_spreads_the_reconnects(tmp_path, mongo,
                                                                                       redis_server):
    env = deployment_env(mongo, redis_server, **ROOMY)
    deployment = Deployment(tmp_path, env, redis_server)
    storming = deployment.server(WS_DRAIN_SECONDS="0")
    draining = deployment.server(WS_DRAIN_SECONDS=str(DRAIN_SECONDS))
    roamers: list[Roamer] = []
    flowing: asyncio.Task[int] | None = None
    try:
        await deployment.start(storming, draining)
        admin = await deployment.create_admin(storming)
        api = deployment.api(storming)
        store = await api.store(admin)
        customer = await api.customer()
        first = (await api.place_order(customer, store))["id"]
        order_ids = [first, *await asyncio.to_thread(copy_orders, env, first, ORDERS - 1)]

        urls = [server.ws_url for server in deployment.servers]
        reconnects: list[tuple[float, int]] = []
        comebacks: list[float] = []
        for n in range(SOCKETS):  # half on each server, as a balancer spreads them
            roamer = Roamer([urls[n % 2]], store.staff.access_token, order_ids, reconnects, comebacks)
            roamers.append(roamer)
            if n % 100 == 99:
                await until(lambda: all(r.connected.is_set() for r in roamers), 60, message="sockets subscribed")
        for roamer in roamers:
            roamer.urls = urls  # from now on, any server that is up

        apis = [api, deployment.api(draining)]
        stop_flow = asyncio.Event()
        changed_at: list[float] = []  # when each change's call returned
        windows: list[tuple[float, float]] = []  # each restart, from the stop to every socket back

        async def change_orders() -> int:
            """Move every order through paid, processing and ready, through whichever server is up."""
            made = 0
            for step in ("paid", "processing", "ready"):
                for order_id in order_ids:
                    if stop_flow.is_set():
                        return made
                    while True:
                        client = random.choice(apis)
                        try:
                            await client.advance(store, order_id, step)
                            break
                        except httpx.TransportError:
                            continue  # that server is restarting; the other one is up
                    made += 1
                    changed_at.append(time.monotonic())
                    await asyncio.sleep(CHANGE_INTERVAL_SECONDS)
            return made

        started_at = time.monotonic()
        flowing = asyncio.create_task(change_orders())

        async def restart(index: int) -> list[float]:
            server = deployment.servers[index]
            before, set_out = len(reconnects), len(comebacks)
            moved = sum(1 for r in roamers if r.server == server.ws_url)
            started = time.monotonic()
            await asyncio.to_thread(server.stop)
            await asyncio.to_thread(server.start)
            await until(lambda: len(reconnects) - before >= moved and all(r.connected.is_set() for r in roamers),
                        60, message=f"the {moved} sockets of server {index} to reconnect")
            done = [moment for moment, _ in reconnects[before:]]
            # What a drain governs is when clients come back, the load it offers the servers; when
            # their connections complete depends as well on how busy this machine is (under a full
            # suite, a storm's 500 completions spread over 2 s and a drain's bunch behind the subscribes).
            windows.append((started, time.monotonic()))
            times = comebacks[set_out:]
            print(f"server {index}: {moved} sockets moved in {max(done) - started:.1f} s, busiest second "
                  f"{busiest_second(times)} setting out, {busiest_second(done)} connected")
            return times

        storm = await restart(0)
        print(f"server 0 restarted by {time.monotonic() - started_at:.1f} s")
        spread = await restart(1)
        print(f"server 1 restarted by {time.monotonic() - started_at:.1f} s")
        stop_flow.set()
        made = await flowing
        print(f"{made} changes made during the restarts")

        # Every socket ends equal to MongoDB, order by order, and never went back in time.
        with MongoClient(env["MONGODB_URL"]) as client:
            stored = {str(doc["_id"]): doc["version"] for doc in client[env["MONGODB_DATABASE"]].orders.find(
                {"_id": {"$in": [ObjectId(i) for i in order_ids]}}, {"version": 1})}
        try:
            await until(lambda: all(r.version(i) == stored[i] for r in roamers for i in order_ids), 30,
                        message="every socket to hold MongoDB's version of every order")
        except AssertionError:
            behind = [(r.server, r.connected.is_set(), i, r.version(i), stored[i]) for r in roamers for i in order_ids
                      if r.version(i) != stored[i]]
            print("behind MongoDB (server, connected, order, version, stored):", len(behind), behind[:10])
            print("behind, by server:", collections.Counter(b[0] for b in behind))
            explain_behind(roamers, behind, stored, env, deployment, started_at)
            raise
        assert not [r.regressions for r in roamers if r.regressions]
        # Changes went on during each restart, through whichever server was up (under a loaded
        # machine the calls are slow, so it is not a count: one CI-like run made 13 in all).
        assert all(any(start <= moment <= end for moment in changed_at) for start, end in windows), \
            "changes flowed through both restarts"

        # The drained restart told each socket its own delay, spread over the window.
        # Every socket was closed by a drain (1012), never dropped; the drained restart told each
        # its own delay, spread over the window (the other told all of them 0).
        assert all(set(r.close_codes) == {1012} for r in roamers)
        delays = sorted(ms for r in roamers for ms in r.retry_after if ms > 0)
        assert len(delays) >= 0.95 * len(spread)
        assert delays[0] < DRAIN_SECONDS * 250 and delays[-1] > DRAIN_SECONDS * 750

        # The busiest second of clients coming back: lower with the drain, also as a share of the sockets moved
        # (the second restart moves more: some of the first one's sockets came back to their server).
        storm_peak, spread_peak = busiest_second(storm), busiest_second(spread)
        print(f"clients coming back in the busiest second: WS_DRAIN_SECONDS=0 {storm_peak} of {len(storm)}, "
              f"WS_DRAIN_SECONDS={DRAIN_SECONDS} {spread_peak} of {len(spread)}")
        assert spread_peak < 0.75 * storm_peak
        assert spread_peak / len(spread) < 0.5 * storm_peak / len(storm)
    finally:
        if flowing is not None and not flowing.done():
            flowing.cancel()
            await asyncio.gather(flowing, return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.gather(*(r.stop() for r in roamers))
        await deployment.close()
