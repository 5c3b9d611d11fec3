"""sockets: N concurrent subscribers over several client processes; server memory per socket.

Each socket signs in as a customer and subscribes to one of that customer's orders, like a
phone showing its order page. Memory is the server's resident set before and after (from
/proc/PID/status with --server-pid, else /metrics `process_resident_memory_bytes`), after a
warm-up batch so that first-use allocations are not charged to the sockets.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.stats import summarize
from server.bench.subscribers import SubscriberSpec, split, subscriber_worker
from server.bench.workers import WorkerPool
from server.bench.wsclient import open_socket, subscribe

NAME = "sockets"
HELP = "N idle WebSocket subscribers: server memory per socket and time to connect them"
DEFAULTS = {"sockets": 10_000, "orders": 200, "processes": 4, "hold": 10.0, "connect_parallel": 64}
TARGET_SOCKETS = 10_000
TARGET_KIB_PER_SOCKET = 12.0  # issue 22's goal (Centrifugo's tuned figure is 10.9 KB)
WARMUP_SOCKETS = 20


async def run(ctx: Context) -> ScenarioResult:
    count = int(ctx.option("sockets"))
    processes = int(ctx.option("processes")) or int(DEFAULTS["processes"])
    hold = float(ctx.option("hold"))
    compression = bool(ctx.args.ws_compression)
    target = ctx.targets[0]  # the process whose memory the probe reads
    order_count = max(1, min(int(ctx.option("orders")), count))
    result = ScenarioResult(NAME, {
        "url": target.base_url, "sockets": count, "orders": order_count, "clientProcesses": processes,
        "holdSeconds": hold, "compression": compression, "memorySource": ctx.probe.source,
    }, at_target_size=count >= TARGET_SOCKETS)

    store = await ctx.population.new_store(NAME)
    orders = await ctx.population.create_orders(store, order_count, accept=True, progress=ctx.progress)
    plan = [(orders[i % order_count].owner_token, {"orderIds": [orders[i % order_count].id]})
            for i in range(count)]

    # Warm-up: the first sockets pay for imports and buffers that later ones reuse.
    for order in orders[:WARMUP_SOCKETS]:
        socket = await open_socket(target.ws_url, order.owner_token, compression=compression)
        await subscribe(socket, order_ids=[order.id])
        await socket.close()
    await asyncio.sleep(0.5)
    rss_before = await ctx.probe.rss_bytes()

    parallel = max(1, int(ctx.option("connect_parallel")))
    specs = [SubscriberSpec(target.ws_url, part, parallel=parallel, compression=compression, record=False)
             for part in split(plan, processes)]
    with WorkerPool(subscriber_worker, specs) as pool:
        await pool.gather(timeout=60)
        began = time.monotonic()
        pool.broadcast(("connect",))
        progress = [0] * len(specs)
        reports: list[dict[str, Any]] = [{}] * len(specs)

        def on_message(index: int, message: tuple[Any, ...]) -> None:
            if message[0] == "tick":
                progress[index] = message[1]
                ctx.progress.update(f"{sum(progress):,}/{count:,} sockets open "
                                    f"({time.monotonic() - began:.1f} s)")

        for index, message in enumerate(await pool.until("connected", max(120.0, count / 50), on_message)):
            reports[index] = message[1]
        connect_seconds = time.monotonic() - began
        opened = sum(r["connected"] for r in reports)
        ctx.progress.note(f"{opened:,} sockets open in {connect_seconds:.1f} s; holding {hold:g} s")
        await asyncio.sleep(min(2.0, hold))
        rss_after = await ctx.probe.rss_bytes()
        await asyncio.sleep(max(0.0, hold - 2.0))
        pool.broadcast(("stop",))
        outputs = await pool.finish(timeout=120)

    handshakes = [x for r in reports for x in r["handshakes"]]
    errors: dict[str, int] = {}
    for report in reports:
        for key, n in report["errors"].items():
            errors[key] = errors.get(key, 0) + n
    for out in outputs:
        for key, n in out["errors"].items():
            errors[key] = errors.get(key, 0) + n
    still_open = sum(o["still_open"] for o in outputs)

    result.add("sockets_open", "sockets open", opened, "", f"{TARGET_SOCKETS:,}", opened >= TARGET_SOCKETS)
    result.add("connect_seconds", "time to connect all", connect_seconds, "s")
    result.add("connect_rate", "connect rate", opened / connect_seconds if connect_seconds else None, "sockets/s")
    result.add_distribution("connect", "connect+subscribe", summarize(handshakes))
    per_socket = None
    if rss_before is not None and rss_after is not None and opened:
        per_socket = (rss_after - rss_before) / opened / 1024
        result.add("rss_before_mib", "server RSS before", rss_before / 2**20, "MiB")
        result.add("rss_after_mib", "server RSS with sockets", rss_after / 2**20, "MiB")
    result.add("kib_per_socket", "server memory per idle socket", per_socket, "KiB",
               f"<= {TARGET_KIB_PER_SOCKET:g} KiB",
               per_socket is not None and per_socket <= TARGET_KIB_PER_SOCKET)
    result.add("dropped", "sockets dropped while held", opened - still_open)
    result.add("failed", "sockets that failed to open", count - opened)
    if errors:
        result.params["errors"] = errors
    if per_socket is None:
        result.notes.append("no memory figure: pass --server-pid or expose process_resident_memory_bytes.")
    return result

