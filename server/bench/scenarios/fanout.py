"""fanout: N staff sockets subscribed to one store; changes at a fixed rate; delivery latency.

Latency is from the moment the change's API call returned to each subscriber's receipt.
Server-side fan-out time per event comes from the `orderpulse_fanout_seconds` histogram of the
process the subscribers are connected to (n/a when the server has none). With `--urls A,B`
changes are made on A and subscribers connect to B: the event crosses Redis.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from server.bench.fixtures import Order, StoreFixture
from server.bench.metrics import MetricsSnapshot, histogram_delta
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.stats import rate_series, summarize
from server.bench.subscribers import (ChangeLog, SubscriberSpec, delivery_latencies, drive_changes,
                                      merge_receipts, orders_for_changes, split, subscriber_worker)
from server.bench.workers import WorkerPool

NAME = "fanout"
HELP = "N store subscribers, changes at a given rate: delivery latency and server fan-out time"
DEFAULTS = {"subscribers": 500, "rate": 5.0, "duration": 10.0, "processes": 4, "settle": 3.0,
            "connect_parallel": 64}
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


async def measure_push(ctx: Context, store: StoreFixture, orders: list[Order],
                       plan: list[tuple[str, dict[str, Any]]], *, processes: int, rate: float,
                       changes: int, settle: float) -> PushRun:
    """Connect the planned subscribers, drive the changes on the first URL, collect receipts."""
    target = ctx.subscribe_target
    parallel = max(1, int(ctx.option("connect_parallel")))
    specs = [SubscriberSpec(target.ws_url, part, parallel=parallel, compression=bool(ctx.args.ws_compression))
             for part in split(plan, processes)]
    with WorkerPool(subscriber_worker, specs) as pool:
        await pool.gather(timeout=60)
        began = time.monotonic()
        pool.broadcast(("connect",))
        ticks = [0] * len(specs)

        def on_tick(index: int, message: tuple) -> None:
            ticks[index] = message[1]
            ctx.progress.update(f"{sum(ticks):,}/{len(plan):,} subscribers connected")

        reports = [m[1] for m in await pool.until("connected", max(120.0, len(plan) / 50), on_tick)]
        connect_seconds = time.monotonic() - began
        connected = sum(r["connected"] for r in reports)
        ctx.progress.note(f"{connected:,} subscribers ready in {connect_seconds:.1f} s; "
                          f"{changes:,} changes at {rate:g}/s")
        subscribe_api = ctx.apis[-1]
        before = MetricsSnapshot.parse(await subscribe_api.text("/metrics"))
        log = await drive_changes(ctx.publish_api, [s.access_token for s in store.staff], orders,
                                  rate=rate, changes=changes, progress=ctx.progress)
        await asyncio.sleep(settle)
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
                   sum(o["still_open"] for o in outputs), before, after)


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
    if log.errors:
        result.params["changeErrors"] = dict(log.errors)
    if run.errors:
        result.params["subscriberErrors"] = run.errors


async def run(ctx: Context) -> ScenarioResult:
    subscribers = int(ctx.option("subscribers"))
    rate = float(ctx.option("rate"))
    duration = float(ctx.option("duration"))
    processes = int(ctx.option("processes")) or DEFAULTS["processes"]
    changes = max(1, int(rate * duration))
    result = ScenarioResult(NAME, {
        "publishUrl": ctx.targets[0].base_url, "subscribeUrl": ctx.subscribe_target.base_url,
        "subscribers": subscribers, "rate": rate, "changes": changes, "clientProcesses": processes,
    }, at_target_size=subscribers >= TARGET_SUBSCRIBERS)

    store = await ctx.population.new_store(NAME, staff_count=2)
    orders = await ctx.population.create_orders(store, orders_for_changes(changes), accept=True,
                                                progress=ctx.progress)
    tokens = [s.access_token for s in store.staff]
    plan = [(tokens[i % len(tokens)], {"storeId": store.id}) for i in range(subscribers)]
    run_ = await measure_push(ctx, store, orders, plan, processes=processes, rate=rate,
                              changes=changes, settle=float(ctx.option("settle")))
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
    return result
