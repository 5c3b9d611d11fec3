"""deadlines: K unpaid orders whose payment deadlines fall together; lateness of each cancellation.

Needs a server started with a small UNPAID_ORDER_TIMEOUT_MINUTES (e.g. 0.25); the bench reads
the timeout from the checkout session's `noShowPolicy.unpaidTimeoutMinutes` and refuses to
wait longer than --max-wait. Checkout sessions are made first and the orders then placed in one
burst, so the deadlines fall as close together as the server can create orders (the window is
reported). Lateness is measured two ways: receipt of the cancellation event by a store
subscriber minus the deadline, and the server's own `cancelledAt` minus the deadline (both on
this host's wall clock: the bench only runs against loopback unless --allow-remote).

How close the deadlines fall is bounded by how fast the server places orders: the product has no
path that moves pending orders' deadlines together. A payment deadline is the order's
`createdAt` plus the process-wide UNPAID_ORDER_TIMEOUT_MINUTES, a commitment deadline is fixed
when the order is placed, a no-show deadline when it is marked ready, and no store setting or
admin call recomputes any of them. So the orders are staged as the product allows: every
checkout session made ahead, then the orders placed in one burst of --create-concurrency calls.

With --burst-orders N, a concurrent checkout burst (N orders, sessions made ahead, placed at
--create-concurrency at once) starts half a second before the first deadline, and its orders
per second and POST latency are reported beside the lateness. The cancellation window (end of
placing to end of waiting) gives the CPU of server and database per 1,000 cancellations.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import datetime
from typing import Any

from server.bench.api import ApiError
from server.bench.fixtures import bounded_gather
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.scenarios.checkout import Burst, confirm_unless_cancelled, place_burst
from server.bench.stats import summarize
from server.bench.subscribers import SubscriberSpec, merge_receipts, subscriber_worker
from server.bench.workers import WorkerPool

NAME = "deadlines"
HELP = "K orders whose payment deadlines fall together: lateness of each cancellation"
DEFAULTS = {"orders": 1000, "max_wait": 300.0, "create_concurrency": 64, "grace": 5.0, "burst_orders": 0}
TARGET_ORDERS = 10_000
TARGET_P99_MS = 1000.0


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def run(ctx: Context) -> ScenarioResult:
    count = int(ctx.option("orders"))
    max_wait = float(ctx.option("max_wait"))
    api, population = ctx.publish_api, ctx.population
    result = ScenarioResult(NAME, {"url": ctx.targets[0].base_url, "orders": count},
                            at_target_size=count >= TARGET_ORDERS)
    store = await population.new_store(NAME)
    customers = population.customers

    made = 0

    async def checkout(i: int) -> tuple[str, dict[str, Any]]:
        nonlocal made
        token = customers[i % len(customers)].access_token
        data = await api.checkout(token, store.id, store.menu_item_id)
        made += 1
        ctx.progress.update(f"{made:,}/{count:,} checkout sessions")
        return token, data

    sessions = await bounded_gather([checkout(i) for i in range(count)], 32)
    burst_count = max(0, int(ctx.option("burst_orders")))
    burst_store = await population.new_store(f"{NAME}-burst") if burst_count else None

    async def burst_session(i: int) -> tuple[str, str]:
        assert burst_store is not None
        token = customers[i % len(customers)].access_token
        return token, (await api.checkout(token, burst_store.id, burst_store.menu_item_id))["checkoutToken"]

    burst_sessions = await bounded_gather([burst_session(i) for i in range(burst_count)], 32)
    timeout_minutes = float(sessions[0][1]["noShowPolicy"]["unpaidTimeoutMinutes"])
    timeout = timeout_minutes * 60
    result.params["unpaidTimeoutMinutes"] = timeout_minutes
    if timeout > max_wait:
        result.notes.append(
            f"the server's unpaid timeout is {timeout_minutes:g} min, longer than --max-wait "
            f"{max_wait:g} s: start it with UNPAID_ORDER_TIMEOUT_MINUTES=0.25 (or raise --max-wait).")
        result.add("lateness_p99_ms", "cancellation lateness p99", None, "ms", f"< {TARGET_P99_MS:g} ms")
        return result

    spec = SubscriberSpec(ctx.subscribe_target.ws_url, [(store.staff_token, {"storeId": store.id})], parallel=1)
    with WorkerPool(subscriber_worker, [spec]) as pool:
        await pool.gather(timeout=60)
        pool.broadcast(("connect",))
        await pool.until("connected", 60, lambda i, m: None)

        placed = 0
        failures: Counter[str] = Counter()

        async def place(session: tuple[str, dict[str, Any]]) -> tuple[str, float] | None:
            nonlocal placed
            token, data = session
            try:
                order = await api.place_order(token, data["checkoutToken"])
            except ApiError as error:
                failures[f"{error.status} {error.message}"] += 1
                return None
            placed += 1
            ctx.progress.update(f"{placed:,}/{count:,} orders placed")
            return order["id"], _epoch(order["createdAt"]) + timeout

        burst_began = time.monotonic()
        deadlines = dict(o for o in await bounded_gather([place(s) for s in sessions],
                                                         int(ctx.option("create_concurrency"))) if o)
        burst = time.monotonic() - burst_began
        if not deadlines:
            raise RuntimeError(f"no order could be placed: {dict(failures)}")
        last = max(deadlines.values())
        wait = min(last + float(ctx.option("grace")) - time.time(), max_wait)
        ctx.progress.note(f"{len(deadlines):,} orders placed in {burst:.1f} s; deadlines span "
                          f"{last - min(deadlines.values()):.2f} s; waiting {wait:.0f} s")
        window = await ctx.cost_window()
        end = time.monotonic() + max(0.0, wait)
        concurrent: asyncio.Task[Burst] | None = None
        if burst_sessions:
            concurrent = asyncio.create_task(_burst_at(min(deadlines.values()) - 0.5, ctx, burst_sessions))
        while (left := end - time.monotonic()) > 0:
            ctx.progress.update(f"waiting for the deadlines: {left:4.0f} s left")
            await asyncio.sleep(min(1.0, left))
        during = await concurrent if concurrent else None
        await window.stop()
        pool.broadcast(("stop",))
        receipts, kept = merge_receipts(await pool.finish(timeout=120))

    wall_offset = time.time() - time.monotonic()
    delivered: list[float] = []
    server_side: list[float] = []
    reasons: Counter[str] = Counter()
    for order_id, deadline in deadlines.items():
        key = f"{order_id}:cancelled"
        if key not in receipts:
            continue
        delivered.append(min(receipts[key]) + wall_offset - deadline)
        reasons[str(kept[key].get("cancellationReason"))] += 1
        if kept[key].get("cancelledAt"):
            server_side.append(_epoch(kept[key]["cancelledAt"]) - deadline)
    per_second = Counter(int(d) for d in deadlines.values())

    result.add("orders", "orders with a deadline", len(deadlines))
    result.add("place_failures", "orders refused", sum(failures.values()))
    result.add("burst_seconds", "time to place them", burst, "s")
    result.add("deadline_window_s", "deadline window", last - min(deadlines.values()), "s")
    result.add("peak_per_second", "most deadlines in one second", max(per_second.values()))
    result.add("cancelled", "cancellations received", len(delivered))
    result.add("missing", "cancellations missing", len(deadlines) - len(delivered))
    result.add_distribution("lateness", "lateness to receipt", summarize(delivered), {"p99": TARGET_P99_MS})
    result.add_distribution("server_lateness", "lateness of cancelledAt", summarize(server_side))
    result.add("early", "cancelled before deadline", sum(1 for x in server_side if x < 0))
    result.add("cancelled_at_missing", "cancellations without cancelledAt", len(delivered) - len(server_side))
    await window.close(result, operations=len(delivered), api_calls=None, what="cancellations")
    result.params["staging"] = ("checkout sessions ahead, orders placed in one burst: the product has no path "
                                "that moves pending orders' deadlines together")
    if during is not None:
        result.add("burst_placed", "concurrent burst: orders placed", len(during.placed))
        result.add("burst_refused", "concurrent burst: orders refused", sum(during.refused.values()))
        result.add("burst_orders_per_second", "concurrent burst: orders per second",
                   len(during.placed) / during.seconds if during.seconds > 0 else None, "/s")
        result.add_distribution("burst_place", "concurrent burst: POST /api/orders", summarize(during.latencies))
        if during.refused:
            result.params["burstRefusals"] = dict(during.refused)
        # Paid, the burst's orders leave no deadline behind to fall during a later scenario.
        assert burst_store is not None
        await bounded_gather([confirm_unless_cancelled(population, burst_store.staff_token, order["id"])
                              for order in during.placed], 16)
    result.params["cancellationReasons"] = dict(reasons)
    if failures:
        result.params["placeFailures"] = dict(failures)
    if burst > timeout:
        result.notes.append(f"placing the orders took {burst:.1f} s, longer than the {timeout:g} s "
                            "timeout: early deadlines passed while the server was still busy placing.")
    start = min(deadlines.values())
    result.timelines["deadlines /s"] = [(s - int(start) + 0.5, float(n)) for s, n in sorted(per_second.items())]
    cancels = Counter(int(min(receipts[f"{o}:cancelled"]) + wall_offset - int(start))
                      for o in deadlines if f"{o}:cancelled" in receipts)
    result.timelines["cancellations received /s"] = [(s + 0.5, float(n)) for s, n in sorted(cancels.items())]
    return result


async def _burst_at(moment: float, ctx: Context, sessions: list[tuple[str, str]]) -> Burst:
    """Place the sessions' orders at --create-concurrency, starting at `moment` (epoch seconds)."""
    await asyncio.sleep(max(0.0, moment - time.time()))
    target = ctx.targets[0]
    return await place_burst(target.host, target.port, sessions, int(ctx.option("create_concurrency")))
