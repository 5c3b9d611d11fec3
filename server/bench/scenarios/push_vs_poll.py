"""push-vs-poll: server CPU to keep K orders fresh for a while, with sockets versus polling.

Same server, same K accepted orders, three phases of --duration seconds each: the server idle
with no clients (reported beside the target, which compares the other two), then one socket
per order (the owner's, subscribed to that order), then one poller per order asking
poll-status every --poll-interval seconds (default 5, what the seed recommends), each on its
own keep-alive connection as separate phones would be. Only the steady state is charged: the
socket phase's CPU is read after every socket has subscribed, the polling phase's after every
poller has connected and made its first poll.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter

from server.bench.rawhttp import RawConnection, ResponseError, build_get
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.subscribers import SubscriberSpec, split, subscriber_worker
from server.bench.workers import WorkerPool

NAME = "push-vs-poll"
HELP = "server CPU to keep K orders fresh: one socket per order versus 5-second polling"
DEFAULTS = {"orders": 1000, "duration": 60.0, "poll_interval": 5.0, "processes": 4, "connect_parallel": 64}
TARGET_ORDERS = 1000
TARGET_RATIO = 20.0


async def run(ctx: Context) -> ScenarioResult:
    count = int(ctx.option("orders"))
    duration = float(ctx.option("duration"))
    interval = float(ctx.option("poll_interval"))
    processes = int(ctx.option("processes")) or int(DEFAULTS["processes"])
    target = ctx.targets[0]
    result = ScenarioResult(NAME, {
        "url": target.base_url, "orders": count, "durationSeconds": duration,
        "pollIntervalSeconds": interval, "cpuSource": ctx.probe.source,
    }, at_target_size=count >= TARGET_ORDERS and duration >= 60)

    store = await ctx.population.new_store(NAME)
    orders = await ctx.population.create_orders(store, count, accept=True, progress=ctx.progress)

    # Phase 0: the same server with no clients, so that what the sockets and the polls themselves
    # cost can be told apart from the server's own background work.
    await asyncio.sleep(1.0)
    idle_cpu, _ = await _cpu_over(ctx, duration, "idle, no clients")

    # Phase 1: sockets.
    plan = [(o.owner_token, {"orderIds": [o.id]}) for o in orders]
    specs = [SubscriberSpec(target.ws_url, part, parallel=int(ctx.option("connect_parallel")), record=False)
             for part in split(plan, processes)]
    with WorkerPool(subscriber_worker, specs) as pool:
        await pool.gather(timeout=60)
        pool.broadcast(("connect",))
        reports = [m[1] for m in await pool.until("connected", max(120.0, count / 50), lambda i, m: None)]
        opened = sum(r["connected"] for r in reports)
        await asyncio.sleep(1.0)
        socket_cpu, socket_tree = await _cpu_over(ctx, duration, f"{opened:,} sockets idle")
        pool.broadcast(("stop",))
        outputs = await pool.finish(timeout=120)
    dropped = opened - sum(o["still_open"] for o in outputs)

    # Phase 2: polling. Like the sockets, which are measured once connected and subscribed,
    # every poller first opens its connection and makes its first poll (the order's first read
    # from the database); the measurement covers the steady state after that.
    polls: Counter[int] = Counter()
    failures: Counter[str] = Counter()
    host = f"{target.host}:{target.port}"
    warmed = 0
    all_warmed = asyncio.Event()
    stop_at: float | None = None

    async def poll_once(connection: RawConnection, raw: bytes) -> None:
        for attempt in (1, 2):  # the server may close an idle keep-alive connection
            try:
                status, _ = await connection.request(raw)
                polls[status] += 1
                return
            except (ResponseError, OSError) as error:
                if attempt == 2:
                    failures[type(error).__name__] += 1

    async def poller(order_id: str, token: str) -> None:
        nonlocal warmed
        connection = RawConnection(target.host, target.port)
        raw = build_get(host, f"/api/orders/{order_id}/poll-status", token)
        try:
            await poll_once(connection, raw)
            warmed += 1
            if warmed == count:
                all_warmed.set()
            await all_warmed.wait()
            due = time.monotonic() + random.uniform(0, interval)
            while True:
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if stop_at is not None and time.monotonic() >= stop_at:
                    return
                await poll_once(connection, raw)
                due += interval
        finally:
            connection.close()

    pollers = [asyncio.create_task(poller(o.id, o.owner_token)) for o in orders]
    await asyncio.wait_for(all_warmed.wait(), timeout=max(120.0, count / 20))
    await asyncio.sleep(1.0)
    warmup_polls = sum(polls.values())
    stop_at = time.monotonic() + duration + 1.0
    poll_cpu, poll_tree = await _cpu_over(ctx, duration, f"{count:,} pollers every {interval:g} s")
    await asyncio.gather(*pollers)
    polls_measured = sum(polls.values()) - warmup_polls

    result.add("sockets_open", "sockets open", opened)
    result.add("socket_cpu_s", "server CPU, sockets", socket_cpu, "s")
    result.add("poll_cpu_s", "server CPU, polling", poll_cpu, "s")
    ratio = poll_cpu / socket_cpu if poll_cpu is not None and socket_cpu else None
    if socket_cpu == 0 and poll_cpu:
        result.notes.append("socket phase CPU below the counter's resolution (10 ms): ratio not computed.")
    result.add("ratio", "polling CPU / socket CPU", ratio, "x", f">= {TARGET_RATIO:g}x",
               ratio is not None and ratio >= TARGET_RATIO)
    result.add("idle_cpu_s", "server CPU, idle (no clients)", idle_cpu, "s")
    if idle_cpu is not None and socket_cpu is not None and poll_cpu is not None:
        socket_own, poll_own = socket_cpu - idle_cpu, poll_cpu - idle_cpu
        result.add("ratio_above_idle", "polling / sockets, above idle",
                   poll_own / socket_own if socket_own > 0 else None, "x")
    if socket_tree is not None and poll_tree is not None:
        result.add("socket_tree_cpu_s", "server+db CPU, sockets", socket_tree, "s")
        result.add("poll_tree_cpu_s", "server+db CPU, polling", poll_tree, "s")
    result.add("polls", "polls answered after the first", polls_measured)
    result.add("polls_429", "polls answered 429", polls.get(429, 0))
    result.add("poll_failures", "polls failed", sum(failures.values()))
    result.add("dropped", "sockets dropped", dropped)
    result.params["pollStatuses"] = {str(k): v for k, v in sorted(polls.items())}
    return result


async def _cpu_over(ctx: Context, duration: float, what: str) -> tuple[float | None, float | None]:
    """Server CPU (and server+children CPU when the pid is known) over `duration` seconds."""
    cpu0, tree0 = await ctx.probe.cpu_seconds(), ctx.probe.tree_cpu_seconds()
    began = time.monotonic()
    while (left := duration - (time.monotonic() - began)) > 0:
        ctx.progress.update(f"{what}: {duration - left:4.0f}/{duration:g} s")
        await asyncio.sleep(min(1.0, left))
    cpu1, tree1 = await ctx.probe.cpu_seconds(), ctx.probe.tree_cpu_seconds()
    cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    tree = tree1 - tree0 if tree0 is not None and tree1 is not None else None
    return cpu, tree
