"""latency: push latency of single-order changes at a steady rate (default 200 changes/s).

One customer owns every order and watches them on one socket per 1,000 orders (the server's
cap per connection), subscribed by order ids, in its own client process so receipt times are
not delayed by the process making changes.
"""

from __future__ import annotations

from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.scenarios.fanout import measure_push, report_push
from server.bench.subscribers import orders_for_changes
from server.bench.wsclient import ORDERS_PER_SOCKET

NAME = "latency"
HELP = "single-order push latency at a given change rate, API call return to receipt"
DEFAULTS = {"rate": 200.0, "duration": 10.0, "settle": 2.0, "connect_parallel": 1, "client_nice": 0}
TARGET_RATE = 200.0
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0


async def run(ctx: Context) -> ScenarioResult:
    rate = float(ctx.option("rate"))
    duration = float(ctx.option("duration"))
    changes = max(1, int(rate * duration))
    result = ScenarioResult(NAME, {
        "publishUrl": ctx.targets[0].base_url, "subscribeUrl": ctx.subscribe_target.base_url,
        "rate": rate, "changes": changes,
    }, at_target_size=rate >= TARGET_RATE and duration >= 5)

    store = await ctx.population.new_store(NAME)
    owner = ctx.population.customers[0]
    orders = await ctx.population.create_orders(store, orders_for_changes(changes), accept=True,
                                                progress=ctx.progress, customers=[owner])
    ids = [o.id for o in orders]
    plan = [(owner.access_token, {"orderIds": ids[i:i + ORDERS_PER_SOCKET]})
            for i in range(0, len(ids), ORDERS_PER_SOCKET)]
    run_ = await measure_push(ctx, store, orders, plan, processes=1, rate=rate, changes=changes,
                              settle=float(ctx.option("settle")), result=result)
    # Each order is watched by exactly one socket: one delivery per change when all connected.
    report_push(result, run_, {"p50": TARGET_P50_MS, "p99": TARGET_P99_MS}, planned=len(plan),
                watchers_per_change=1 if run_.connected == len(plan) else 0)
    return result
