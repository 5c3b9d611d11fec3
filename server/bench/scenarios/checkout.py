"""checkout: orders placed per second with 64 placed at once; latency of `POST /api/orders`.

The checkout sessions (`POST /api/orders/checkout-session`, priced carts) are made first, then the
orders are placed in one burst of `--concurrency` calls in flight, spread over the customers:
the measured window is that burst. In the same run the same client places as many orders, at
the same concurrency and with the same bodies, on the HTTP floor (floors.py: a bare Starlette
endpoint answering the real answer's bytes), and the server's figures are given as ratios to it.
Afterwards staff confirm each order's payment (outside the window), so no payment deadline of
this scenario falls during a later one.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import orjson

from server.bench.api import ApiError
from server.bench.fixtures import Population, bounded_gather
from server.bench.floors import HttpFloor
from server.bench.rawhttp import RawConnection, build_with_body
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.stats import summarize

NAME = "checkout"
HELP = "orders placed per second at a given concurrency, POST /api/orders latency, and their floor"
DEFAULTS = {"orders": 2000, "concurrency": 64}
TARGET_CONCURRENCY = 64
TARGET_ORDERS = 1000
CALL_TIMEOUT_SECONDS = 60.0


@dataclass
class Burst:
    """What one burst of order placements gave: latencies (s), its length, refusals, answers."""

    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    refused: Counter[str] = field(default_factory=Counter)
    placed: list[dict[str, Any]] = field(default_factory=list)


async def place_burst(host: str, port: int, sessions: list[tuple[str, str]], concurrency: int,
                      on_placed: Callable[[int], None] | None = None) -> Burst:
    """Place one order per (token, checkoutToken) over `concurrency` keep-alive connections.

    The lean client (rawhttp) keeps the client's own CPU per call small, so that the floor
    measures the stack, not the client; the connections are open before the clock starts.
    """
    requests = [build_with_body("POST", f"{host}:{port}", "/api/orders", token,
                                orjson.dumps({"checkoutToken": checkout_token}))
                for token, checkout_token in sessions]
    burst = Burst()
    connections = [RawConnection(host, port) for _ in range(min(concurrency, len(requests)))]
    await asyncio.gather(*(c.connect() for c in connections))
    pending = iter(requests)

    async def drive(connection: RawConnection) -> None:
        for raw in pending:
            began = time.perf_counter()
            try:
                status, body = await asyncio.wait_for(connection.request(raw), CALL_TIMEOUT_SECONDS)
            except (OSError, ConnectionError, TimeoutError) as error:
                burst.refused[f"error {type(error).__name__}"] += 1
                continue
            if status != 201:
                message = orjson.loads(body).get("message", "") if body[:1] == b"{" else ""
                burst.refused[f"{status} {message}".strip()] += 1
                continue
            burst.latencies.append(time.perf_counter() - began)
            burst.placed.append(orjson.loads(body)["data"])
            if on_placed:
                on_placed(len(burst.placed))

    began = time.perf_counter()
    try:
        await asyncio.gather(*(drive(c) for c in connections))
    finally:
        burst.seconds = time.perf_counter() - began
        for connection in connections:
            connection.close()
    return burst


async def run(ctx: Context) -> ScenarioResult:
    count = max(1, int(ctx.option("orders")))
    concurrency = max(1, int(ctx.option("concurrency")))
    api, population = ctx.publish_api, ctx.population
    result = ScenarioResult(NAME, {"url": ctx.targets[0].base_url, "orders": count, "concurrency": concurrency,
                                   "client": "python (httpx, one process)"},
                            at_target_size=concurrency == TARGET_CONCURRENCY and count >= TARGET_ORDERS)
    store = await population.new_store(NAME, staff_count=2)
    customers = population.customers
    made = 0

    async def session(i: int) -> tuple[str, str]:
        nonlocal made
        token = customers[i % len(customers)].access_token
        data = await api.checkout(token, store.id, store.menu_item_id)
        made += 1
        ctx.progress.update(f"{made:,}/{count:,} checkout sessions")
        return token, data["checkoutToken"]

    sessions = await bounded_gather([session(i) for i in range(count)], 32)
    ctx.progress.note(f"{count:,} checkout sessions ready; placing the orders, {concurrency} at once")
    target = ctx.targets[0]
    window = await ctx.cost_window()
    served = await place_burst(target.host, target.port, sessions, concurrency,
                               lambda n: ctx.progress.update(f"{n:,}/{count:,} orders placed"))
    await window.close(result, operations=len(served.placed),
                       api_calls=len(served.placed) + sum(served.refused.values()), what="orders placed")

    result.add("placed", "orders placed", len(served.placed))
    result.add("refused", "orders refused", sum(served.refused.values()))
    result.add("orders_per_second", "orders placed per second",
               len(served.placed) / served.seconds if served.seconds > 0 else None, "/s")
    result.add_distribution("place", "POST /api/orders", summarize(served.latencies))
    if served.refused:
        result.params["refusals"] = dict(served.refused)
    if not served.placed:
        raise RuntimeError(f"no order could be placed: {dict(served.refused)}")

    # The floor answers every POST with the bytes of a real answer, to the same client.
    body = orjson.dumps({"success": True, "data": served.placed[0]})
    ctx.progress.note(f"floor: a bare Starlette endpoint, {len(body)}-byte answer, same client and concurrency")
    with tempfile.TemporaryDirectory(prefix="orderpulse-bench-floor-") as folder:
        floor = await HttpFloor(body, Path(folder)).start("/api/orders/floor/poll-status")
        try:
            floor_cpu = floor.cpu_seconds()
            bare = await place_burst("127.0.0.1", floor.port, sessions, concurrency)
            floor_cpu = (floor.cpu_seconds() or 0.0) - (floor_cpu or 0.0)
        finally:
            floor.stop()
    floor_rate = len(bare.placed) / bare.seconds if bare.seconds > 0 else None
    result.add("floor_orders_per_second", "floor: bare Starlette POST answers per second", floor_rate, "/s")
    result.add_distribution("floor_place", "floor: POST", summarize(bare.latencies))
    server_rate = result.value("orders_per_second")
    result.add("floor_ratio_rate", "orders per second / floor",
               server_rate / floor_rate if isinstance(server_rate, float) and floor_rate else None, "x")
    mine, base = result.distributions["place"].get("p99"), result.distributions["floor_place"].get("p99")
    result.add("floor_ratio_p99", "p99 / floor p99", mine / base if mine and base and base > 0 else None, "x")
    if bare.placed:
        result.add("floor_cpu_per_1000_s", "floor CPU per 1,000 answers", floor_cpu / len(bare.placed) * 1000, "s")
    if bare.refused:
        result.notes.append(f"the floor refused {sum(bare.refused.values())} calls: its figures are suspect.")

    # Paid orders have no pending deadline: nothing of this scenario cancels during a later one.
    staff = [s.access_token for s in store.staff]
    await bounded_gather([confirm_unless_cancelled(population, staff[i % len(staff)], order["id"])
                          for i, order in enumerate(served.placed)], 16)
    return result


async def confirm_unless_cancelled(population: Population, staff_token: str, order_id: str) -> None:
    """Confirm payment once; an order its payment deadline already cancelled (a short timeout) stays so."""
    try:
        await population.api.set_payment(staff_token, order_id)
    except ApiError as error:
        if error.status != 409:
            raise

