"""Redis Cluster with sharded pub/sub (SSUBSCRIBE/SPUBLISH, Redis 7+): events spread over shards.

`REDIS_URL=redis+cluster://host:port[,host:port…]` (`rediss+cluster://` for TLS) names any nodes;
redis-py's cluster client discovers the rest and routes each SPUBLISH to the master owning the
channel's hash slot. A channel is its own key (`order:…`, `store:…`), so channels spread over all
16,384 slots and so over every master; there are no keys to keep together.

Listening takes one connection per master, whatever the number of channels (the bound
Centrifugo gets from its partitions): that master's channels are SSUBSCRIBEd on it, one command
per slot. Each such shard listener is a `Listener` of redis.py with its own probe channel (a hash
tag picked to land on that master), so a frozen master is noticed within the liveness bound like
a frozen plain Redis. A shard that breaks, falls silent, answers MOVED, or is told `sunsubscribe`
by the server (its slot migrated) is dropped; the backend reports the loss, re-reads the slot
map, re-subscribes every channel on its current owner (the promoted replica after a failover),
and reports the recovery, so every socket gets a fresh snapshot as after a plain Redis restart.
redis-py's own `ClusterPubSub` (8.0+) re-routes and reconnects by itself, silently: a gap it
papers over would leave sockets stale, so only its slot map and SPUBLISH routing are used here.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TypedDict
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.exceptions import RedisClusterException

from server.realtime.backends.base import LIVENESS_SECONDS, BrokerBackend, Confirmation, ConnectionChanged, Deliver
from server.realtime.backends.redis import BACKOFF_FIRST, BACKOFF_MAX, PROBE_PREFIX, Listener, no_retry

log = logging.getLogger("orderpulse.broker.redis_cluster")

# Publishes in flight at once, each holding at most one connection per channel (3 for a change):
# under the cluster client's 100 connections per node, with room for the probes.
PUBLISHES_IN_FLIGHT = 32
# A frozen master would hold a change's API call through the cluster client's retries (over 20 s);
# past this the outbox mark stays and the relay republishes once the shard is back.
PUBLISH_TIMEOUT_SECONDS = 2.0


class ClientOptions(TypedDict, total=False):
    """What a cluster URL says besides its nodes: given to the cluster client and each node's client."""

    ssl: bool
    username: str | None
    password: str | None


def parse_cluster_url(url: str) -> tuple[list[tuple[str, int]], ClientOptions]:
    """`redis+cluster://[user:password@]host:port[,host:port…]` -> seed nodes and client options."""
    parts = urlsplit(url)
    credentials, _, hosts = parts.netloc.rpartition("@")
    seeds = []
    for host_port in hosts.split(","):
        host, _, port = host_port.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("each node must be host:port")
        seeds.append((host.strip("[]"), int(port)))
    options: ClientOptions = {"ssl": parts.scheme == "rediss+cluster"}
    if credentials:
        user, _, password = credentials.partition(":")
        options["username"], options["password"] = unquote(user) or None, unquote(password) or None
    return seeds, options


class _Shard:
    def __init__(self, name: str, listener: Listener) -> None:
        self.name = name
        self.listener = listener
        self.reader: asyncio.Task[None] | None = None


class RedisClusterBackend(BrokerBackend):
    def __init__(self, url: str, liveness: float = LIVENESS_SECONDS) -> None:
        self._seeds, self._options = parse_cluster_url(url)
        self._liveness = liveness
        self._token = uuid.uuid4().hex
        self._cluster: RedisCluster | None = None
        self._channels: set[str] = set()
        self._placed: dict[str, str] = {}  # channel -> the shard (master name) it is subscribed on
        self._shards: dict[str, _Shard] = {}
        self._deliver: Deliver | None = None
        self._connection_changed: ConnectionChanged | None = None
        self._live = asyncio.Event()
        self._commands = asyncio.Lock()
        self._repair: asyncio.Task[None] | None = None
        self._dirty = False
        self._publishing = asyncio.Semaphore(PUBLISHES_IN_FLIGHT)

    # --- connections --------------------------------------------------------------------------

    async def connect(self, deliver: Deliver, connection_changed: ConnectionChanged) -> None:
        self._deliver = deliver
        self._connection_changed = connection_changed
        self._cluster = RedisCluster(startup_nodes=[ClusterNode(host, port) for host, port in self._seeds],
                                     protocol=2, socket_connect_timeout=2, socket_timeout=5, **self._options)
        try:
            await self._cluster.initialize()
        except RedisClusterException as exc:  # the startup's one `error:` line names OSErrors
            raise ConnectionError(str(exc)) from None
        self._live.set()

    async def disconnect(self) -> None:
        self._live.clear()
        if self._repair is not None:
            self._repair.cancel()
            await asyncio.gather(self._repair, return_exceptions=True)
        for name in list(self._shards):
            await self._drop_shard(name)
        if self._cluster is not None:
            await self._cluster.aclose()
        self._channels.clear()
        self._placed.clear()

    def _node_client(self, node: ClusterNode) -> aioredis.Redis:
        bound = max(0.5, self._liveness / 2)
        return aioredis.Redis(host=node.host, port=int(node.port), protocol=2, socket_connect_timeout=min(2, bound),
                              socket_timeout=bound, retry=no_retry(), **self._options)

    def _owner(self, channel: str) -> ClusterNode:
        """The master that owns `channel`'s slot, as the cluster client last learned the slots."""
        assert self._cluster is not None
        node = self._cluster.get_node_from_key(channel)
        if node is None:
            raise RedisClusterException(f"no node owns the slot of {channel}")
        return node

    def _probe_channel(self, node_name: str) -> str:
        """This process's probe channel for one master: a hash tag whose slot that master owns."""
        assert self._cluster is not None
        for n in itertools.count():
            channel = f"{PROBE_PREFIX}{self._token}:{{{n}}}"
            if self._owner(channel).name == node_name:
                return channel
        raise AssertionError("unreachable")

    async def _publish_one(self, channel: str, payload: bytes) -> None:
        assert self._cluster is not None
        await self._cluster.spublish(channel, payload)

    async def _open_shard(self, node: ClusterNode, channels: set[str]) -> _Shard:
        listener = Listener(self._node_client(node), sharded=True, probe_channel=self._probe_channel(node.name),
                            probe=self._publish_one, liveness=self._liveness)
        try:
            await listener.open(channels, self._deliver or (lambda channel, payload: None))
        except BaseException:
            await listener.close()
            raise
        shard = _Shard(node.name, listener)
        self._shards[node.name] = shard
        for channel in channels:
            self._placed[channel] = node.name
        shard.reader = asyncio.create_task(self._read(shard), name=f"redis-cluster-shard-{node.name}")
        return shard

    async def _drop_shard(self, name: str) -> None:
        shard = self._shards.pop(name, None)
        if shard is None:
            return
        for channel in shard.listener.channels:
            if self._placed.get(channel) == name:
                del self._placed[channel]
        if shard.reader is not None and shard.reader is not asyncio.current_task():
            shard.reader.cancel()
            await asyncio.gather(shard.reader, return_exceptions=True)
        await shard.listener.close()

    async def _read(self, shard: _Shard) -> None:
        assert self._deliver is not None
        try:
            await shard.listener.read_until_broken(self._deliver)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("Redis Cluster shard %s lost: %s", shard.name, exc)
        if self._shards.get(shard.name) is shard:
            await self._drop_shard(shard.name)
        self._lost()

    # --- losing and regaining shards --------------------------------------------------------

    def _lost(self) -> None:
        self._dirty = True
        if self._live.is_set():
            self._live.clear()
            if self._connection_changed:
                self._connection_changed(False)
        if self._repair is None or self._repair.done():
            self._repair = asyncio.create_task(self._repair_until_whole(), name="redis-cluster-repair")

    async def _repair_until_whole(self) -> None:
        assert self._cluster is not None
        delay = BACKOFF_FIRST
        while True:
            self._dirty = False
            try:
                await self._cluster.nodes_manager.initialize()
                async with self._commands:
                    await self._place()
            except Exception as exc:
                self._dirty = True
                log.warning("Redis Cluster not whole yet (%s); retrying in %.2f s", exc, delay)
            if not self._dirty:
                break
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))
            delay = min(BACKOFF_MAX, delay * 2)
        log.info("Redis Cluster listeners re-established: %d channels on %d shards",
                 len(self._channels), len(self._shards))
        self._live.set()
        if self._connection_changed:
            self._connection_changed(True)

    async def _place(self) -> None:
        """Subscribe every wanted channel on the master that owns its slot now, and nowhere else."""
        assert self._cluster is not None
        masters = {node.name: node for node in self._cluster.get_primaries()}
        for name in [name for name in self._shards if name not in masters]:
            await self._drop_shard(name)
        wanted: dict[str, set[str]] = defaultdict(set)
        confirmations: list[Confirmation] = []
        for channel in self._channels:
            wanted[self._owner(channel).name].add(channel)
        for name, shard in list(self._shards.items()):
            for channel in shard.listener.channels - wanted.get(name, set()):
                self._placed.pop(channel, None)
                await shard.listener.remove(channel)
        for name, channels in wanted.items():
            existing = self._shards.get(name)
            if existing is None:
                await self._open_shard(masters[name], channels)
                continue
            for channel in channels - existing.listener.channels:
                confirmations.append(await existing.listener.add(channel))
                self._placed[channel] = name
        # The repair is reported (and every socket resynchronised) once all of it took.
        if confirmations:
            await asyncio.wait(confirmations, timeout=self._liveness)

    # --- the backend interface --------------------------------------------------------------

    async def subscribe(self, channel: str) -> Confirmation | None:
        self._channels.add(channel)
        try:
            async with self._commands:
                if not self._live.is_set() or channel in self._placed:
                    return None  # the repair places it
                assert self._cluster is not None
                try:
                    node = self._owner(channel)
                    shard = self._shards.get(node.name)
                    if shard is None:
                        await self._open_shard(node, {channel})  # returns once the shard confirmed it
                        return None
                    confirmation = await shard.listener.add(channel)
                    self._placed[channel] = node.name
                    return confirmation
                except Exception as exc:
                    log.warning("subscribe to %s deferred until its shard is back: %s", channel, exc)
                    self._lost()
                    return None
        except asyncio.CancelledError:
            if channel not in self._placed:  # not asked for yet: the broker forgets it too, nobody listens
                self._channels.discard(channel)
            raise

    async def unsubscribe(self, channel: str) -> None:
        self._channels.discard(channel)
        async with self._commands:
            name = self._placed.pop(channel, None)
            shard = self._shards.get(name) if name else None
            if shard is not None:
                try:
                    await shard.listener.remove(channel)
                except Exception:  # the shard's reader notices and the repair leaves it out
                    pass

    async def publish(self, channels: Sequence[str], payload: bytes) -> None:
        assert self._cluster is not None
        # Each channel to the master owning its slot, at once (a cluster pipeline measured 2-3x slower
        # here). redis-py's async cluster refuses (MaxConnectionsError) rather than waits past a node's
        # pool, so a burst of changes queues here instead.
        async with self._publishing:
            await asyncio.wait_for(asyncio.gather(*(self._cluster.spublish(channel, payload) for channel in channels)),
                                   PUBLISH_TIMEOUT_SECONDS)

    async def ping(self) -> bool:
        if self._cluster is None or not self._live.is_set():
            return False
        try:
            return bool(await self._cluster.ping(target_nodes=RedisCluster.PRIMARIES))
        except Exception:
            return False
