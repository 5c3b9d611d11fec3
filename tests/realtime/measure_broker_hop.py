"""The broker's own hop, plain Redis against Redis Cluster, back to back in one run: from the start
of `Broker.publish` of an order change (its order, store and customer channels) to its delivery
at a subscriber holding `--channels` order channels, each change on a random one of them.

    .venv/bin/python -m tests.realtime.measure_broker_hop --rate 200 --seconds 10 --rounds 3

Both engines are Debian's redis-server 7 on loopback (one node; 3 masters with 3 replicas), and
publisher and subscriber are separate `Broker`s (separate connections) in this one process, so
the figures are the engines' and the backends' cost without an HTTP call or a database write.
`orderpulse-bench latency` measures the whole path (README, Performance).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bson import ObjectId

from server.realtime.broker import Broker
from tests.harness import free_loopback_port
from tests.realtime.redis_cluster import REDIS_SERVER, RedisClusterServer, require_redis_server_7
from tests.support import until, until_sync


async def hop(url: str, rate: float, seconds: float, channels: int) -> list[float]:
    publisher, subscriber = Broker(url), Broker(url)
    await publisher.connect()
    await subscriber.connect()
    sent: dict[bytes, float] = {}
    delays: list[float] = []

    warm: set[str] = set()

    def received(channel: str, payload: bytes) -> None:
        if payload == b"warm":
            warm.add(channel)
        else:
            delays.append((time.perf_counter() - sent[payload]) * 1000)

    orders = [f"order:{ObjectId()}" for _ in range(channels)]
    for channel in orders:
        await subscriber.subscribe(channel, received)
    # Subscribes are confirmed asynchronously: measure only once every channel delivers.
    while len(warm) < len(orders):
        for chunk in range(0, len(orders), 20):
            await publisher.publish(orders[chunk:chunk + 20], b"warm")
        await asyncio.sleep(0.1)
    store, customer = f"store:{ObjectId()}", f"customer:{ObjectId()}"
    count = int(rate * seconds)
    start = time.perf_counter()
    for n in range(count):
        await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        payload = str(n).encode()
        sent[payload] = time.perf_counter()
        await publisher.publish([random.choice(orders), store, customer], payload)
    await until(lambda: len(delays) == count, timeout=10, message=f"{count} deliveries")
    await publisher.disconnect()
    await subscriber.disconnect()
    return delays


def summary(delays: list[float]) -> str:
    q = statistics.quantiles(delays, n=100)
    return f"p50 {q[49]:.3f} ms  p90 {q[89]:.3f} ms  p99 {q[98]:.3f} ms  max {max(delays):.3f} ms"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--channels", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    require_redis_server_7()
    root = Path(tempfile.mkdtemp(prefix="orderpulse-hop-"))
    port = free_loopback_port()
    plain = subprocess.Popen([str(REDIS_SERVER), "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(root)], stdout=subprocess.DEVNULL)
    cluster = RedisClusterServer(root / "cluster").start()
    try:
        until_sync(lambda: subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).returncode == 0,
                   10, message="redis-server")
        urls = {"plain Redis": f"redis://127.0.0.1:{port}/0", "Redis Cluster": cluster.url}
        for round_ in range(1, args.rounds + 1):
            for name, url in urls.items():
                delays = await hop(url, args.rate, args.seconds, args.channels)
                print(f"round {round_}  {name:<13}  {len(delays)} changes  {summary(delays)}", flush=True)
    finally:
        plain.kill()
        cluster.stop()


if __name__ == "__main__":
    asyncio.run(main())
