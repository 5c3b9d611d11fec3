"""deadlines: K unpaid orders whose payment deadlines fall at one moment; lateness of each cancellation.

Staged through the product's own path: the orders are placed ahead (checkout sessions first, then
the orders at --create-concurrency) while their own payment deadline is far, then the store's staff
close the store for payments --lead seconds ahead (`PATCH /api/stores/{id}/pace {"closesAt"}`),
which moves every unpaid order's payment deadline to the closing. Each order's deadline is then
the earlier of its own (`createdAt` plus the server's UNPAID_ORDER_TIMEOUT_MINUTES, read from the
checkout session's `noShowPolicy`) and the closing. Start the server with a timeout longer than
placing the orders takes (e.g. UNPAID_ORDER_TIMEOUT_MINUTES=120 for 10,000): an order whose own
timeout passed before the closing is reported apart. The bench waits at most --max-wait after
the closing.

Lateness is measured two ways: receipt of the cancellation event by a store subscriber minus the
deadline, and the server's own `cancelledAt` minus the deadline (both on this host's wall clock:
the bench only runs against loopback unless --allow-remote).

With --burst-orders N, a concurrent checkout burst (N orders, sessions made ahead, placed at
--create-concurrency at once) starts half a second before the closing, and its orders per second
and POST latency are reported beside the lateness. The cancellation window (from just before the
closing to the end of waiting) gives the CPU of server and database per 1,000 cancellations.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from server.bench.api import ApiError
from server.bench.fixtures import Population, bounded_gather
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.scenarios.checkout import Burst, confirm_unless_cancelled, place_burst
from server.bench.stats import summarize
from server.bench.subscribers import SubscriberSpec, merge_receipts, subscriber_worker
from server.bench.workers import WorkerPool

NAME = "deadlines"
HELP = "K orders whose payment deadlines fall together (a store's closing): lateness of each cancellation"
DEFAULTS = {"orders": 1000, "max_wait": 300.0, "create_concurrency": 64, "grace": 5.0, "burst_orders": 0,
            "lead": 10.0}
TARGET_ORDERS = 10_000
TARGET_P99_MS = 1000.0
STAGING_TIMEOUT = 300.0
TOKEN_CHECK_SECONDS = 30.0


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


async def run(ctx: Context) -> ScenarioResult:
    count = int(ctx.option("orders"))
    max_wait = float(ctx.option("max_wait"))
    lead = float(ctx.option("lead"))
    api, population = ctx.publish_api, ctx.population
    result = ScenarioResult(NAME, {"url": ctx.targets[0].base_url, "orders": count, "lead": lead},
                            at_target_size=count >= TARGET_ORDERS)
    store = await population.new_store(NAME)
    # Staging 10,000 orders outlasts an access token: the customers' are refreshed as it goes.
    refreshing = asyncio.create_task(_keep_tokens_fresh(population))

    made = 0

    async def checkout(i: int) -> tuple[str, dict[str, Any]]:
        nonlocal made
        token = population.customers[i % len(population.customers)].access_token
        data = await api.checkout(token, store.id, store.menu_item_id, timeout=STAGING_TIMEOUT)
        made += 1
        ctx.progress.update(f"{made:,}/{count:,} checkout sessions")
        return token, data

    sessions = await bounded_gather([checkout(i) for i in range(count)], 32)
    burst_count = max(0, int(ctx.option("burst_orders")))
    burst_store = await population.new_store(f"{NAME}-burst") if burst_count else None

    async def burst_session(i: int) -> tuple[str, str]:
        assert burst_store is not None
        token = population.customers[i % len(population.customers)].access_token
        return token, (await api.checkout(token, burst_store.id, burst_store.menu_item_id,
                                          timeout=STAGING_TIMEOUT))["checkoutToken"]

    burst_sessions = await bounded_gather([burst_session(i) for i in range(burst_count)], 32)
    timeout_minutes = float(sessions[0][1]["noShowPolicy"]["unpaidTimeoutMinutes"])
    timeout = timeout_minutes * 60
    result.params["unpaidTimeoutMinutes"] = timeout_minutes

    placed = 0
    failures: Counter[str] = Counter()

    async def place(i: int, session: tuple[str, dict[str, Any]]) -> tuple[str, float] | None:
        nonlocal placed
        _, data = session
        token = population.customers[i % len(population.customers)].access_token  # refreshed while staging
        try:
            # Staging, not measured: a loaded server may take long, and a retry finds the order placed.
            order = await api.place_order(token, data["checkoutToken"], timeout=STAGING_TIMEOUT)
        except ApiError as error:
            failures[f"{error.status} {error.message}"] += 1
            return None
        placed += 1
        ctx.progress.update(f"{placed:,}/{count:,} orders placed")
        return order["id"], _epoch(order["createdAt"]) + timeout

    staging_began = time.monotonic()
    try:
        own_deadlines = dict(o for o in await bounded_gather([place(i, s) for i, s in enumerate(sessions)],
                                                             int(ctx.option("create_concurrency"))) if o)
    finally:
        refreshing.cancel()
    staging = time.monotonic() - staging_began
    if not own_deadlines:
        raise RuntimeError(f"no order could be placed: {dict(failures)}")

    spec = SubscriberSpec(ctx.subscribe_target.ws_url, [(store.staff_token, {"storeId": store.id})], parallel=1)
    with WorkerPool(subscriber_worker, [spec]) as pool:
        await pool.gather(timeout=60)
        pool.broadcast(("connect",))
        await pool.until("connected", 60, lambda i, m: None)

        store.staff[0] = await api.refresh(store.staff[0])
        # The store closes for payments `lead` seconds from now: every unpaid order is due then.
        closing_began = time.time()
        closes_at = _epoch((await api.set_closing(store.staff_token, store.id, _iso(closing_began + lead)))["closesAt"])
        closing_call = time.time() - closing_began
        deadlines = {order_id: min(own, closes_at) for order_id, own in own_deadlines.items()}
        ctx.progress.note(f"{len(deadlines):,} orders placed in {staging:.1f} s; closing set in {closing_call:.1f} s "
                          f"for {closes_at - closing_began:.1f} s ahead")
        concurrent: asyncio.Task[Burst] | None = None
        if burst_sessions:
            concurrent = asyncio.create_task(_burst_at(closes_at - 0.5, ctx, burst_sessions))
        await asyncio.sleep(max(0.0, closes_at - 1.0 - time.time()))
        window = await ctx.cost_window()
        end = time.monotonic() + max(0.0, min(closes_at + float(ctx.option("grace")) - time.time(), max_wait))
        while (left := end - time.monotonic()) > 0:
            ctx.progress.update(f"waiting for the deadlines: {left:4.0f} s left")
            await asyncio.sleep(min(1.0, left))
        during = await concurrent if concurrent else None
        await window.stop()
        pool.broadcast(("stop",))
        receipts, kept = merge_receipts(await pool.finish(timeout=120))
    # Open again: the closing is the scenario's own, not a state left for later runs.
    await api.set_closing(store.staff_token, store.id, None)

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
    last = max(deadlines.values())

    result.add("orders", "orders with a deadline", len(deadlines))
    result.add("place_failures", "orders refused", sum(failures.values()))
    result.add("burst_seconds", "time to place them (staging)", staging, "s")
    result.add("closing_seconds", "time to set the closing (moves every deadline)", closing_call, "s")
    result.add("before_closing", "deadlines of their own before the closing", sum(
        1 for own in own_deadlines.values() if own < closes_at))
    result.add("deadline_window_s", "deadline window", last - min(deadlines.values()), "s")
    result.add("peak_per_second", "most deadlines in one second", max(per_second.values()))
    result.add("cancelled", "cancellations received", len(delivered))
    result.add("missing", "cancellations missing", len(deadlines) - len(delivered))
    result.add_distribution("lateness", "lateness to receipt", summarize(delivered), {"p99": TARGET_P99_MS})
    result.add_distribution("server_lateness", "lateness of cancelledAt", summarize(server_side),
                            {"p99": TARGET_P99_MS})
    result.add("early", "cancelled before deadline", sum(1 for x in server_side if x < 0))
    result.add("cancelled_at_missing", "cancellations without cancelledAt", len(delivered) - len(server_side))
    await window.close(result, operations=len(delivered), api_calls=None, what="cancellations")
    result.params["staging"] = ("orders placed ahead with their own far deadline, then the store closed for "
                                f"payments {lead:g} s ahead (PATCH /api/stores/{{id}}/pace closesAt)")
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
    if closing_began + closing_call > closes_at:
        result.notes.append(f"setting the closing took {closing_call:.1f} s, longer than the {lead:g} s lead: "
                            "raise --lead, or the lateness includes moving the deadlines.")
    if any(own < closes_at for own in own_deadlines.values()):
        result.notes.append(f"placing the orders took {staging:.1f} s against a {timeout:g} s timeout: some "
                            "orders' own deadline fell before the closing (start the server with a longer "
                            "UNPAID_ORDER_TIMEOUT_MINUTES).")
    start = min(deadlines.values())
    result.timelines["deadlines /s"] = [(s - int(start) + 0.5, float(n)) for s, n in sorted(per_second.items())]
    cancels = Counter(int(min(receipts[f"{o}:cancelled"]) + wall_offset - int(start))
                      for o in deadlines if f"{o}:cancelled" in receipts)
    result.timelines["cancellations received /s"] = [(s + 0.5, float(n)) for s, n in sorted(cancels.items())]
    return result


async def _keep_tokens_fresh(population: Population) -> None:
    while True:
        await asyncio.sleep(TOKEN_CHECK_SECONDS)
        await population.refresh_tokens()


async def _burst_at(moment: float, ctx: Context, sessions: list[tuple[str, str]]) -> Burst:
    """Place the sessions' orders at --create-concurrency, starting at `moment` (epoch seconds)."""
    await asyncio.sleep(max(0.0, moment - time.time()))
    target = ctx.targets[0]
    return await place_burst(target.host, target.port, sessions, int(ctx.option("create_concurrency")))
