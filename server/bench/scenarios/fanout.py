"""fanout: N staff sockets subscribed to one store; changes at a fixed rate; delivery latency.

Latency is from the moment the change's API call returned to each subscriber's receipt.
Server-side fan-out time per event comes from the `orderpulse_fanout_seconds` histogram of the
process the subscribers are connected to (n/a when the server has none). With `--urls A,B`
changes are made on A and subscribers connect to B: the event crosses Redis.

Two baselines, in the same run, each with the same number of subscribers, client processes and
events at the same rate, the server's figures then given as ratios to each:

- the transport floor (floors.py): a minimal asyncio server on uvloop, handshakes by hand and no
  WebSocket library, whose fan-out is a plain loop writing one pre-framed byte string of the same
  size to every socket's transport (timed like the server's histogram), triggered over a pipe;
- a peer (node_peer.py): a Node.js server on the `ws` package sending the same payload to every
  subscriber with `ws`'s `send`, when node and npm are there (else one line says it is skipped).

The subscriber processes run at `--client-nice` (default 10): on a machine shared with the
servers they measure, they would otherwise take one of its cores for themselves every time a
fan-out wakes them, which clients on other machines never do. The server, the floor and the peer
are each measured against the same niced clients (`--client-nice 0` measures them all with
clients competing for the cores instead).
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Awaitable, Callable

from server.bench.fixtures import Order, StoreFixture
from server.bench.metrics import MetricsSnapshot, histogram_delta
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.stats import rate_series, summarize, worst_series
from server.bench.floors import FanoutFloorSpec, event_frame, event_payload, fanout_floor_worker
from server.bench.node_peer import NodePeer, PeerUnavailable, install_ws
from server.bench.subscribers import (ChangeLog, SubscriberSpec, connect_subscribers, delivery_latencies,
                                      drive_changes, merge_receipts, orders_for_changes, split,
                                      subscriber_worker)
from server.bench.workers import WorkerPool

NAME = "fanout"
HELP = "N store subscribers, changes at a given rate: delivery latency and server fan-out time"
DEFAULTS = {"subscribers": 5000, "rate": 5.0, "duration": 10.0, "processes": 4, "settle": 3.0,
            "connect_parallel": 64, "client_nice": 10}
TARGET_SUBSCRIBERS = 5_000
TARGET_SERVER_MS = 25.0
TARGET_P99_MS = 100.0
FANOUT_HISTOGRAM = "orderpulse_fanout_seconds"


@dataclass
class PushRun:
    log: ChangeLog
    receipts: dict[str, list[float]]
    kept: dict[str, dict[str, Any]]
    connected: int
    connect_seconds: float
    errors: dict[str, int]
    order_problems: dict[str, int]
    still_open: int
    before: MetricsSnapshot
    after: MetricsSnapshot
    largest_frame: int  # bytes of the largest event frame a subscriber read


async def measure_push(ctx: Context, store: StoreFixture, orders: list[Order],
                       plan: list[tuple[str, dict[str, Any]]], *, processes: int, rate: float,
                       changes: int, settle: float, result: ScenarioResult) -> PushRun:
    """Connect the planned subscribers, drive the changes on the first URL, collect receipts.

    The changes and the settling after them are the window whose CPU and commands go to `result`.
    """
    target = ctx.subscribe_target
    parallel = max(1, int(ctx.option("connect_parallel")))
    specs = [SubscriberSpec(target.ws_url, part, parallel=parallel, compression=bool(ctx.args.ws_compression))
             for part in split(plan, processes)]
    with WorkerPool(subscriber_worker, specs, nice=int(ctx.option("client_nice"))) as pool:
        reports, connect_seconds = await connect_subscribers(pool, len(plan), ctx.progress)
        connected = sum(r["connected"] for r in reports)
        ctx.progress.note(f"{connected:,} subscribers ready in {connect_seconds:.1f} s; "
                          f"{changes:,} changes at {rate:g}/s")
        subscribe_api = ctx.apis[-1]
        before = MetricsSnapshot.parse(await subscribe_api.text("/metrics"))
        window = await ctx.cost_window()
        log = await drive_changes(ctx.publish_api, [s.access_token for s in store.staff], orders,
                                  rate=rate, changes=changes, progress=ctx.progress)
        await asyncio.sleep(settle)
        await window.close(result, operations=len(log.returned),
                           api_calls=len(log.returned) + sum(log.errors.values()), what="changes")
        after = MetricsSnapshot.parse(await subscribe_api.text("/metrics"))
        pool.broadcast(("stop",))
        outputs = await pool.finish(timeout=120)
    receipts, kept = merge_receipts(outputs)
    errors: dict[str, int] = {}
    problems: dict[str, int] = {}
    for source in [r["errors"] for r in reports] + [o["errors"] for o in outputs]:
        for key, n in source.items():
            errors[key] = errors.get(key, 0) + n
    for out in outputs:
        for key, n in out["order_problems"].items():
            problems[key] = problems.get(key, 0) + n
    return PushRun(log, receipts, kept, connected, connect_seconds, errors, problems,
                   sum(o["still_open"] for o in outputs), before, after,
                   max((o["largest_frame"] for o in outputs), default=0))


def report_push(result: ScenarioResult, run: PushRun, targets: dict[str, float], *, planned: int,
                watchers_per_change: int) -> None:
    """Rows shared by fanout and latency: deliveries, latency percentiles, ordering, errors.

    `watchers_per_change` is how many connected sockets should receive each change.
    """
    log = run.log
    from_return, from_send, early = delivery_latencies(log, run.receipts)
    expected = len(log.returned) * watchers_per_change
    delivered = len(from_return)
    result.add("changes_ok", "changes made", len(log.returned))
    result.add("change_errors", "changes refused", sum(log.errors.values()))
    span = log.finished - log.started
    result.add("change_rate", "achieved change rate", len(log.returned) / span if span > 0 else None, "/s")
    result.add("subscribers", "subscribers connected", run.connected)
    if run.connected < planned:
        result.notes.append(f"only {run.connected:,} of {planned:,} subscribers connected: see subscriberErrors.")
    result.add("deliveries", "events delivered", delivered)
    result.add("missing", "deliveries missing", expected - delivered)
    result.add_distribution("delivery", "API return→receipt", summarize(from_return), targets)
    # The server publishes before it answers, so most receipts beat the API answer: the
    # send→receipt figure shows the whole path including the write.
    result.add_distribution("send_to_receipt", "API send→receipt", summarize(from_send), targets)
    result.add("early", "receipts before API answer", early)
    if delivered and early > delivered / 2:
        result.notes.append(
            f"{early:,} of {delivered:,} receipts arrived before the API call that caused them returned "
            "(the server publishes, then answers): return→receipt reads 0 for them, so judge by "
            "send→receipt, which includes the write and any queueing of the API call.")
    result.add("out_of_order", "older event after newer", run.order_problems.get("older_after_newer", 0))
    result.add("dropped", "subscribers dropped", run.connected - run.still_open)
    received = sorted(t for times in run.receipts.values() for t in times)
    result.timelines["events received /s"] = rate_series(received, log.started)
    result.timelines["changes made /s"] = rate_series(log.returned.values(), log.started)
    # Where the tail sits: spread evenly it is the path's cost, bunched it is a stall.
    result.timelines["send→receipt worst ms by send time"] = worst_series(
        ((log.sent[key], max(times) - log.sent[key]) for key, times in run.receipts.items()
         if key in log.sent and times), log.started, bucket=0.5)
    if log.errors:
        result.params["changeErrors"] = dict(log.errors)
    if run.errors:
        result.params["subscriberErrors"] = run.errors


async def run(ctx: Context) -> ScenarioResult:
    subscribers = int(ctx.option("subscribers"))
    rate = float(ctx.option("rate"))
    duration = float(ctx.option("duration"))
    processes = int(ctx.option("processes")) or int(DEFAULTS["processes"])
    changes = max(1, int(rate * duration))
    result = ScenarioResult(NAME, {
        "publishUrl": ctx.targets[0].base_url, "subscribeUrl": ctx.subscribe_target.base_url,
        "subscribers": subscribers, "rate": rate, "changes": changes, "clientProcesses": processes,
        "clientNice": int(ctx.option("client_nice")),
    }, at_target_size=subscribers >= TARGET_SUBSCRIBERS)

    store = await ctx.population.new_store(NAME, staff_count=2)
    orders = await ctx.population.create_orders(store, orders_for_changes(changes), accept=True,
                                                progress=ctx.progress)
    tokens = [s.access_token for s in store.staff]
    plan = [(tokens[i % len(tokens)], {"storeId": store.id}) for i in range(subscribers)]
    run_ = await measure_push(ctx, store, orders, plan, processes=processes, rate=rate,
                              changes=changes, settle=float(ctx.option("settle")), result=result)
    report_push(result, run_, {"p99": TARGET_P99_MS}, planned=subscribers, watchers_per_change=run_.connected)
    fanout = histogram_delta(run_.before, run_.after, FANOUT_HISTOGRAM)
    if fanout is None or not fanout.count:
        for key, label in (("server_mean_ms", "server fan-out mean"), ("server_p99_ms", "server fan-out p99")):
            result.add(key, label, "n/a", "", f"< {TARGET_SERVER_MS:g} ms")
        result.notes.append(f"server fan-out time n/a: no {FANOUT_HISTOGRAM} observations on "
                            f"{ctx.subscribe_target.base_url}/metrics.")
    else:
        mean = fanout.mean * 1000
        p99 = fanout.quantile(0.99) * 1000
        result.add("server_events", "server fan-out events", fanout.count)
        result.add("server_mean_ms", "server fan-out mean", mean, "ms", f"< {TARGET_SERVER_MS:g} ms",
                   mean < TARGET_SERVER_MS)
        result.add("server_p50_ms", "server fan-out p50 (histogram)", fanout.quantile(0.5) * 1000, "ms")
        result.add("server_p99_ms", "server fan-out p99 (histogram)", p99, "ms", f"< {TARGET_SERVER_MS:g} ms",
                   p99 < TARGET_SERVER_MS)

    frame_bytes = run_.largest_frame or DEFAULT_FRAME_BYTES
    server_mean_ms = None if fanout is None or not fanout.count else fanout.mean * 1000
    settle = float(ctx.option("settle"))
    ctx.progress.note(f"transport floor: one pre-framed {frame_bytes}-byte frame written to {subscribers:,} sockets")
    floor = await measure_floor(ctx, subscribers, processes=processes, rate=rate, changes=changes,
                                settle=settle, frame_bytes=frame_bytes)
    report_baseline(result, floor, "floor", "transport floor", server_mean_ms=server_mean_ms)
    try:
        folder = await asyncio.to_thread(install_ws)
    except PeerUnavailable as missing:
        result.notes.append(str(missing) + ".")
        return result
    ctx.progress.note(f"peer: a Node ws server broadcasting the same {frame_bytes}-byte event to {subscribers:,} sockets")
    peer = await measure_node_peer(ctx, folder, subscribers, processes=processes, rate=rate, changes=changes,
                                   settle=settle, frame_bytes=frame_bytes)
    report_baseline(result, peer, "node", "Node ws peer", server_mean_ms=server_mean_ms)
    result.params["nodePeer"] = peer.version
    return result


# When no event frame was read (nothing delivered), the floor still runs with a typical event's size.
DEFAULT_FRAME_BYTES = 600


@dataclass
class FloorRun:
    log: ChangeLog
    receipts: dict[str, list[float]]
    connected: int
    loop_seconds: list[float]  # one send loop per event, as timed in the floor server
    frame_bytes: int
    version: str = ""


Broadcast = Callable[[int], Awaitable[float]]


async def measure_baseline(ctx: Context, port: int, broadcast: Broadcast, count: int, *, processes: int,
                           rate: float, changes: int, settle: float, frame_bytes: int) -> FloorRun:
    """The same subscribers and events against a baseline server on `port`.

    `broadcast(i)` makes the baseline send event i to every subscriber and returns its loop time.
    """
    log = ChangeLog()
    loops: list[float] = []
    plan = [("floor", {"storeId": "floor"})] * count
    parallel = max(1, int(ctx.option("connect_parallel")))
    specs = [SubscriberSpec(f"ws://127.0.0.1:{port}", part, parallel=parallel) for part in split(plan, processes)]
    with WorkerPool(subscriber_worker, specs, nice=int(ctx.option("client_nice"))) as pool:
        reports, _ = await connect_subscribers(pool, count, ctx.progress)
        log.started = time.monotonic()
        for i in range(changes):
            await asyncio.sleep(max(0.0, log.started + i / rate - time.monotonic()))
            key = f"floor-{i}:ready"
            log.sent[key] = time.monotonic()
            loops.append(await broadcast(i))
            log.returned[key] = time.monotonic()
            ctx.progress.update(f"{i + 1:,}/{changes:,} events sent")
        log.finished = time.monotonic()
        await asyncio.sleep(settle)
        pool.broadcast(("stop",))
        outputs = await pool.finish(timeout=120)
    receipts, _ = merge_receipts(outputs)
    return FloorRun(log, receipts, sum(r["connected"] for r in reports), loops, frame_bytes)


async def measure_floor(ctx: Context, count: int, *, processes: int, rate: float, changes: int,
                        settle: float, frame_bytes: int) -> FloorRun:
    """The transport floor: `fanout_floor_worker` writing pre-framed bytes to each transport."""
    frames = [event_frame(f"floor-{i}", "ready", frame_bytes) for i in range(changes)]
    with WorkerPool(fanout_floor_worker, [FanoutFloorSpec()]) as server:
        _, port = (await server.gather(timeout=60))[0]

        async def broadcast(i: int) -> float:
            server.broadcast(("event", frames[i]))
            return float((await server.gather(timeout=60))[0][1])

        run_ = await measure_baseline(ctx, port, broadcast, count, processes=processes, rate=rate,
                                      changes=changes, settle=settle, frame_bytes=frame_bytes)
        server.broadcast(("stop",))
        await server.finish(timeout=30)
    return run_


async def measure_node_peer(ctx: Context, folder: Path, count: int, *, processes: int, rate: float,
                            changes: int, settle: float, frame_bytes: int) -> FloorRun:
    """The Node ws peer sending the same event payloads (ws frames each send itself)."""
    payloads = [event_payload(f"floor-{i}", "ready", frame_bytes) for i in range(changes)]
    peer = await NodePeer(folder).start()
    try:
        async def broadcast(i: int) -> float:
            return (await peer.send(payloads[i]))[0]

        run_ = await measure_baseline(ctx, peer.port, broadcast, count, processes=processes, rate=rate,
                                      changes=changes, settle=settle, frame_bytes=frame_bytes)
    finally:
        await peer.stop()
    run_.version = peer.version
    return run_


def report_baseline(result: ScenarioResult, floor: FloorRun, key: str, name: str, *,
                    server_mean_ms: float | None) -> None:
    """A baseline's rows (`key`_...) and the server's ratios to it."""
    _, from_send, _ = delivery_latencies(floor.log, floor.receipts)
    loop = summarize(floor.loop_seconds)
    result.params[f"{key}FrameBytes"] = floor.frame_bytes
    result.add(f"{key}_subscribers", f"{name}: subscribers connected", floor.connected)
    result.add(f"{key}_deliveries", f"{name}: events delivered", len(from_send))
    result.add(f"{key}_missing", f"{name}: deliveries missing",
               len(floor.log.returned) * floor.connected - len(from_send))
    result.add(f"{key}_loop_mean_ms", f"{name}: send loop mean", loop["mean"], "ms")
    result.add_distribution(f"{key}_loop", f"{name}: send loop", loop)
    receipt = summarize(from_send)
    result.add_distribution(f"{key}_send_to_receipt", f"{name}: send→receipt", receipt)
    result.add(f"{key}_ratio_fanout", f"server fan-out mean / {name} loop mean",
               server_mean_ms / loop["mean"] if server_mean_ms is not None and loop["mean"] > 0 else None, "x")
    served = result.distributions.get("send_to_receipt", {})
    for stat in ("p50", "p99"):
        mine, base = served.get(stat), receipt.get(stat)
        result.add(f"{key}_ratio_{stat}", f"send→receipt {stat} / {name} {stat}",
                   mine / base if mine and base and not math.isnan(mine) and base > 0 else None, "x")
