"""Real-time fixtures: deployments of real server processes on one database and one Redis,
WebSocket and SSE watchers that keep what a client keeps, and a deadline poller.

Tests wait on conditions, never on fixed sleeps: `until` (tests/support.py) polls one against a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
import redis
import uvicorn
from bson import ObjectId
from pymongo import MongoClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from server.embedded_mongo import free_loopback_port
from server.uvicorn_adapter.lean_websocket import LeanWebSocketProtocol
from tests.harness import RedisServer, ServerProcess, create_admin, drop_database
from tests.support import PASSWORD, Actor, Api, StoreSetup, until

_admins = itertools.count(1)


def restart_redis(server: RedisServer) -> None:
    """Kill redis-server and start a new one on the same port (clients must reconnect)."""
    server.kill()
    server.start()


def redis_channels(server: RedisServer, pattern: str = "*") -> set[str]:
    """What `redis-cli PUBSUB CHANNELS` shows: channels with at least one subscriber."""
    client = redis.Redis.from_url(server.url)
    try:
        return {c.decode() for c in client.pubsub_channels(pattern)}
    finally:
        client.close()


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition, 0 when absent."""
    match = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def metrics_of(server: ServerProcess) -> str:
    async with httpx.AsyncClient() as client:
        return (await client.get(f"{server.url}/metrics")).text


def rss_kib(pid: int) -> int:
    """A process's resident memory (`VmRSS`), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def copy_orders(env: dict[str, str], order_id: str, count: int) -> list[str]:
    """`count` more orders like `order_id` (own ids, numbers and references), written straight to the
    database: placing hundreds of orders through checkout would be most of a test's time."""
    with MongoClient(env["MONGODB_URL"]) as client:
        orders = client[env["MONGODB_DATABASE"]].orders
        original = orders.find_one({"_id": ObjectId(order_id)})
        copies = []
        for n in range(count):
            copy = {key: value for key, value in original.items() if key not in ("transaction_id", "outbox_at")}
            copy.update(_id=ObjectId(), order_number=f"{original['order_number']}-{n}",
                        payment_reference=f"{original['payment_reference']}{n}",
                        checkout_id=f"{original['checkout_id']}-{n}")
            copies.append(copy)
        orders.insert_many(copies)
        return [str(copy["_id"]) for copy in copies]


# --- watchers --------------------------------------------------------------------------------

class OrderBook:
    """What a correct client keeps: the newest state per order, and every version it was shown."""

    def __init__(self) -> None:
        self.orders: dict[str, dict[str, Any]] = {}
        self.event_versions: dict[str, list[int]] = defaultdict(list)
        self.regressions: list[tuple[str, int, int]] = []
        self.snapshots: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []

    def take(self, frame: dict[str, Any]) -> None:
        if frame.get("type") == "snapshot":
            self.snapshots.append(frame)
            for entry in frame["orders"]:
                self._keep(entry, is_event=False)
        elif frame.get("type") == "order":
            self.events.append(frame)
            assert frame["version"] == frame["order"]["version"]
            self.event_versions[frame["order"]["id"]].append(frame["version"])
            self._keep(frame["order"], is_event=True)

    def _keep(self, order: dict[str, Any], is_event: bool) -> None:
        held = self.orders.get(order["id"])
        # An event must be newer than anything shown; a resync snapshot may repeat the current state.
        if held is not None and (order["version"] < held["version"]
                                 or (is_event and order["version"] == held["version"])):
            self.regressions.append((order["id"], held["version"], order["version"]))
            return
        self.orders[order["id"]] = order

    def status(self, order_id: str) -> str | None:
        order = self.orders.get(order_id)
        return order["orderStatus"] if order else None

    def version(self, order_id: str) -> int:
        order = self.orders.get(order_id)
        return order["version"] if order else 0


@contextlib.asynccontextmanager
async def served(app):
    """The in-process app behind a real uvicorn on loopback, for sockets (its lifespan already ran)."""
    config = uvicorn.Config(app, host="127.0.0.1", port=free_loopback_port(), lifespan="off",
                            ws=LeanWebSocketProtocol, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, timeout=10, message="uvicorn to listen")
    try:
        yield f"127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        await task


class Watcher(OrderBook):
    """One WebSocket client: a reader task records every frame as it arrives."""

    def __init__(self, connection: ClientConnection) -> None:
        super().__init__()
        self.connection = connection
        self.frames: list[dict[str, Any]] = []
        self.close_code: int | None = None
        self._ids = itertools.count(1)
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, url: str, token: str | None = None, headers: dict[str, str] | None = None) -> Watcher:
        if token is not None:
            url = f"{url}?token={token}"
        connection = await connect(url, additional_headers=headers, open_timeout=5, max_size=None)
        return cls(connection)

    async def _read(self) -> None:
        try:
            async for message in self.connection:
                frame = json.loads(message)
                self.frames.append(frame)
                self.take(frame)
        except ConnectionClosed:
            pass
        finally:
            rcvd = self.connection.protocol.close_rcvd
            self.close_code = rcvd.code if rcvd is not None else 1006

    @property
    def closed(self) -> bool:
        return self._reader.done()

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        await self.connection.send(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))

    async def ask(self, frame: dict[str, Any], timeout: float = 5.0) -> dict[str, Any]:
        """Send a frame with a fresh id and return the answer that echoes it."""
        frame_id = f"q{next(self._ids)}"
        seen = len(self.frames)
        await self.send({**frame, "id": frame_id})
        return await until(lambda: next((f for f in self.frames[seen:] if f.get("id") == frame_id), None),
                           timeout, message=f"an answer to {frame}")

    async def subscribe(self, **target: Any) -> dict[str, Any]:
        return await self.ask({"type": "subscribe", **target})

    async def wait_closed(self, timeout: float = 5.0) -> int:
        await until(lambda: self.closed, timeout, message="the server to close the socket")
        assert self.close_code is not None
        return self.close_code

    async def close(self) -> None:
        await self.connection.close()
        await asyncio.gather(self._reader, return_exceptions=True)


class SseWatcher(OrderBook):
    """One Server-Sent Events stream, parsed as a browser's EventSource would."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[tuple[str | None, str, str]] = []  # (id, event, data)
        self.comments: list[str] = []
        self.http_status: int | None = None
        self.headers: httpx.Headers | None = None
        self.body: str = ""
        self.last_event_id: str | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self, url: str, token: str, last_event_id: str | None = None) -> SseWatcher:
        self._task = asyncio.create_task(self._stream(url, token, last_event_id))
        return self

    async def _stream(self, url: str, token: str, last_event_id: str | None) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}  # "": a public stream
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, \
                client.stream("GET", url, headers=headers) as response:
            self.http_status, self.headers = response.status_code, response.headers
            if response.status_code != 200:
                self.body = (await response.aread()).decode()
                return
            block: list[str] = []
            async for line in response.aiter_lines():
                if line:
                    block.append(line)
                    continue
                self._dispatch(block)
                block = []

    def _dispatch(self, block: list[str]) -> None:
        event_id, event, data = None, "message", []
        for line in block:
            if line.startswith(":"):
                self.comments.append(line)
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "event":
                event = value
            elif name == "data":
                data.append(value)
        if not data:
            return
        text = "\n".join(data)
        self.messages.append((event_id, event, text))
        if event_id is not None:
            self.last_event_id = event_id
        self.take(json.loads(text))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


# --- deployments ---------------------------------------------------------------------------------

@dataclass
class Deployment:
    """Server processes sharing one database (and Redis, when given), and the people using them."""

    root: Path
    env: dict[str, str]
    redis: RedisServer | None = None
    servers: list[ServerProcess] = field(default_factory=list)
    clients: list[httpx.AsyncClient] = field(default_factory=list)
    admin: Actor | None = None

    def server(self, **extra_env: str) -> ServerProcess:
        process = ServerProcess({**self.env, **extra_env}, self.root / f"server{len(self.servers)}")
        self.servers.append(process)
        return process

    async def start(self, *servers: ServerProcess) -> None:
        await asyncio.gather(*(asyncio.to_thread(s.start) for s in servers))

    def api(self, server: ServerProcess) -> Api:
        client = httpx.AsyncClient(base_url=server.url, timeout=20)
        self.clients.append(client)
        return Api(client)

    async def create_admin(self, server: ServerProcess) -> Actor:
        email = f"admin{next(_admins)}-{uuid.uuid4().hex[:6]}@campus.test"
        await asyncio.to_thread(create_admin, self.env, email=email, password=PASSWORD, name="Ada Admin")
        self.admin = await self.api(server).login(email)
        return self.admin

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        for server in self.servers:
            server.kill()
        drop_database(self.env["MONGODB_URL"], self.env["MONGODB_DATABASE"])


def deployment_env(mongo, redis_server: RedisServer | None, **extra: str) -> dict[str, str]:
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"rt_{uuid.uuid4().hex[:12]}",
           "POLL_MIN_INTERVAL_SECONDS": "0", **extra}
    if redis_server is not None:
        env["REDIS_URL"] = redis_server.url
    return env


@contextlib.asynccontextmanager
async def one_server(root: Path, env: dict[str, str], redis_server: RedisServer | None):
    """A started one-server deployment with an admin: (deployment, server, api, admin); closed after."""
    deployment = Deployment(root, env, redis_server)
    server = deployment.server()
    await deployment.start(server)
    try:
        admin = await deployment.create_admin(server)
        yield deployment, server, deployment.api(server), admin
    finally:
        await deployment.close()


@dataclass
class Site:
    """One running server with a store, its staff and two customers, ready for sockets."""

    deployment: Deployment
    server: ServerProcess
    api: Api
    store: StoreSetup
    other_store: StoreSetup
    alice: Actor
    bob: Actor

    @property
    def redis(self) -> RedisServer | None:
        return self.deployment.redis

    async def watcher(self, actor: Actor | None = None, server: ServerProcess | None = None) -> Watcher:
        return await Watcher.open((server or self.server).ws_url, actor.access_token if actor else None)


SINGLE_SERVER_ENV = {"WS_STALL_CLOSE_SECONDS": "2", "SSE_HEARTBEAT_SECONDS": "0.5"}


@pytest_asyncio.fixture(scope="package")
async def site(mongo, redis_server, tmp_path_factory) -> Site:
    """One server process on the session Redis, shared by the WebSocket and SSE modules."""
    env = deployment_env(mongo, redis_server, **SINGLE_SERVER_ENV)
    async with one_server(tmp_path_factory.mktemp("site"), env, redis_server) as (deployment, server, api, admin):
        store = await api.store(admin)
        other_store = await api.store(admin)
        alice, bob = await api.customer("Alice Iyer"), await api.customer("Bob Das")
        yield Site(deployment, server, api, store, other_store, alice, bob)

