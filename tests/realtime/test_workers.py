"""`orderpulse serve --workers 2` from nothing (no MONGODB_URL, no REDIS_URL): the supervisor starts
nx-27017 and a redis-server for its two workers on one port; a change made through one worker
reaches sockets on the other, `/metrics` counts both, and a worker killed with SIGKILL is restarted
while its clients reconnect and resync."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from server.embedded_mongo import free_loopback_port
from tests.harness import FAST_PASSWORD_COST, REPO, TEST_JWT_SECRET, create_admin, unmeasured_environ
from tests.realtime.conftest import Watcher
from tests.support import PASSWORD, Api, until, until_sync

pytestmark = pytest.mark.timeout(120)

SOCKETS = 8


def children(pid: int) -> set[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as listing:
        return {int(child) for child in listing.read().split()}


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's children that are OrderPulse workers (not nx-27017 or redis-server)."""
    pids = set()
    for child in children(supervisor):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as cmdline:
                if b"--worker-fd" in cmdline.read():
                    pids.add(child)
        except FileNotFoundError:
            pass
    return pids


def server_side_owner(server_port: int, client_port: int, candidates: set[int]) -> int | None:
    """Which of `candidates` holds the server end of the loopback connection from `client_port`:
    its socket's inode in /proc/net/tcp, then the process with that inode among its descriptors."""
    inode = None
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == client_port:
                inode = fields[9]
    if inode is None:
        return None
    for pid in candidates:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]":
                    return pid
        except (FileNotFoundError, PermissionError):
            continue
    return None


class Supervised:
    """`python -m server serve --workers 2` on a free port, with an empty data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_loopback_port()
        self.data_dir = data_dir
        env = {key: value for key, value in unmeasured_environ().items()
               if key not in ("MONGODB_URL", "REDIS_URL", "PROMETHEUS_MULTIPROC_DIR")}
        self.env = {**env, "JWT_SECRET": TEST_JWT_SECRET, "ORDERPULSE_ENV": "test", "LOG_LEVEL": "warning",
                    **FAST_PASSWORD_COST, "HOST": "127.0.0.1", "PORT": str(self.port), "DATA_DIR": str(data_dir),
                    "POLL_MIN_INTERVAL_SECONDS": "0"}
        self.log = open(data_dir / "supervisor.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-m", "server", "serve", "--workers", "2"], cwd=REPO,
                                        env=self.env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return (self.data_dir / "supervisor.log").read_text()

    def mongodb_url(self) -> str:
        """The embedded database's URL, as its lock file names it."""
        return (self.data_dir / "mongo.lock").read_text().split()[1]

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(20)
        finally:
            self.log.close()


@pytest.fixture
def supervised(tmp_path):
    server = Supervised(tmp_path)
    yield server
    if server.process.poll() is None:
        server.process.kill()
        server.process.wait()


def _ready(server: Supervised) -> bool:
    if server.process.poll() is not None:
        raise AssertionError(f"the supervisor exited:\n{server.output()}")
    try:
        return httpx.get(f"{server.url}/readyz", timeout=1).status_code == 200 and len(worker_pids(server.process.pid)) == 2
    except httpx.HTTPError:
        return False


async def test_two_workers_from_nothing_share_changes_metrics_and_survive_a_killed_worker(supervised):
    await asyncio.to_thread(until_sync, lambda: _ready(supervised), 90, interval=0.2, message="two ready workers")
    env = {"MONGODB_URL": supervised.mongodb_url(), "MONGODB_DATABASE": "orderpulse"}
    await asyncio.to_thread(create_admin, env, email="admin@campus.test", password=PASSWORD, name="Ada Admin")
    async with httpx.AsyncClient(base_url=supervised.url, timeout=20) as client:
        api = Api(client)
        admin = await api.login("admin@campus.test")
        store = await api.store(admin)
        customer = await api.customer()
        order_id = (await api.place_order(customer, store))["id"]
        workers = worker_pids(supervised.process.pid)

        # Sockets until each worker holds some: the kernel spreads new connections over both.
        watchers: list[Watcher] = []
        owners: dict[int, set[int]] = {pid: set() for pid in workers}
        ws_url = f"ws://127.0.0.1:{supervised.port}/ws"
        while len(watchers) < SOCKETS or not all(owners.values()):
            assert len(watchers) < 60, f"60 sockets all landed on one worker: {owners}"
            watcher = await Watcher.open(ws_url, store.staff.access_token)
            await watcher.subscribe(orderIds=[order_id])
            owner = server_side_owner(supervised.port, watcher.connection.local_address[1], workers)
            assert owner in owners
            owners[owner].add(len(watchers))
            watchers.append(watcher)

        # A change made through whichever worker answers reaches the sockets of both.
        await api.advance(store, order_id, "paid")
        version = (await api.get(f"/api/orders/{order_id}", customer)).json()["data"]["version"]
        await until(lambda: all(w.version(order_id) == version for w in watchers), 10,
                    message="every socket, on both workers, to see the change")

        # /metrics counts both workers' sockets, whichever worker answers the scrape.
        def sockets_open(text: str) -> float:
            return next(float(line.split()[-1]) for line in text.splitlines()
                        if line.startswith("orderpulse_sockets_open "))
        for _ in range(4):
            assert sockets_open((await client.get("/metrics")).text) == len(watchers)

        # SIGKILL one worker: the supervisor starts another, its sockets end, reconnect and resync.
        victim = next(iter(workers))
        os.kill(victim, signal.SIGKILL)
        lost = [watchers[i] for i in owners[victim]]
        for watcher in lost:
            assert await watcher.wait_closed(10) == 1006
        await until(lambda: len(worker_pids(supervised.process.pid) - workers) == 1
                    and len(worker_pids(supervised.process.pid)) == 2, 30, message="a restarted worker")
        assert f"worker 0 (pid {victim}) killed by SIGKILL; restarting" in supervised.output() or \
            f"worker 1 (pid {victim}) killed by SIGKILL; restarting" in supervised.output()
        await api.advance(store, order_id, "processing")  # while they are away: the resync brings it
        version = (await api.get(f"/api/orders/{order_id}", customer)).json()["data"]["version"]
        for index in owners[victim]:
            watcher = await Watcher.open(ws_url, store.staff.access_token)
            snapshot = await watcher.subscribe(orderIds=[order_id])
            assert snapshot["orders"][0]["version"] == version
            watchers[index] = watcher
        await api.advance(store, order_id, "ready")
        await until(lambda: all(w.version(order_id) == version + 1 for w in watchers), 10,
                    message="every socket, the reconnected ones too, to see the next change")
        await until(lambda: sockets_open(httpx.get(f"{supervised.url}/metrics").text) == len(watchers), 10,
                    message="/metrics to count the live workers' sockets only")
        for watcher in watchers:
            await watcher.close()
    started = children(supervised.process.pid)  # the workers, nx-27017 and redis-server
    assert supervised.stop() == 0
    await until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in started), 10,
                message="everything the supervisor started to stop with it")
