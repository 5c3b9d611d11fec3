"""poll: poll-status throughput and latency at a fixed concurrency, real tokens, many orders.

Each connection cycles through its own slice of orders, polling each as its owner (so the
server verifies the JWT and the ownership on every request). Run the server with
POLL_MIN_INTERVAL_SECONDS=0 to measure throughput: with the default 1 s limit most polls of a
fast client answer 429, which this scenario counts separately.
"""

from __future__ import annotations

import asyncio
import os
import time
from array import array
from collections import Counter
from dataclasses import dataclass

from server.bench.metrics import db_commands, db_reads
from server.bench.rawhttp import RawConnection, build_get
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.stats import summarize
from server.bench.workers import Channel, WorkerPool

NAME = "poll"
HELP = "poll-status throughput and latency percentiles at a given concurrency"
DEFAULTS = {"concurrency": 64, "orders": 2000, "duration": 10.0, "warmup": 2.0,
            "processes": 0, "engine": "raw", "max_requests": 5_000_000}
TARGET_RPS = 15_000
TARGET_P99_MS = 10.0


def default_processes() -> int:
    # The server needs a core of its own: on a 2-core box one lean client process is best.
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores - 2)


@dataclass
class PollSpec:
    base_url: str
    host: str
    port: int
    engine: str
    connections: int
    # One list per connection: (order id, owner token).
    slices: list[list[tuple[str, str]]]
    max_requests: int


async def poll_worker(channel: Channel, spec: PollSpec) -> dict:
    """Open the connections, wait for "go", poll until the stop time or the request budget."""
    host_header = f"{spec.host}:{spec.port}"
    requests = [[build_get(host_header, f"/api/orders/{oid}/poll-status", tok) for oid, tok in s]
                for s in spec.slices]
    latencies = array("d")
    finished = array("d")
    statuses: Counter[int] = Counter()
    bad_bodies = 0
    completed = 0
    errors: Counter[str] = Counter()
    budget = spec.max_requests

    if spec.engine == "raw":
        conns = [RawConnection(spec.host, spec.port) for _ in range(spec.connections)]
        for conn in conns:
            await conn.connect()
    else:
        import httpx

        # One client per connection: a shared pool of 64 costs ~3x more client CPU per request.
        clients = [httpx.AsyncClient(base_url=spec.base_url, timeout=30,
                                     limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
                   for _ in range(spec.connections)]
        paths = [[(f"/api/orders/{oid}/poll-status", {"authorization": f"Bearer {tok}"}) for oid, tok in s]
                 for s in spec.slices]
    channel.send(("ready",))
    _, start_at, measure_from, stop_at = await channel.recv()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    async def run_raw(index: int) -> None:
        nonlocal budget, bad_bodies, completed
        conn, mine = conns[index], requests[index]
        position = 0
        monotonic = time.monotonic
        while budget > 0:
            t0 = monotonic()
            if t0 >= stop_at:
                return
            budget -= 1
            try:
                status, body = await conn.request(mine[position])
            except (ConnectionError, OSError) as error:
                errors[type(error).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            t1 = monotonic()
            completed += 1
            position = (position + 1) % len(mine)
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                finished.append(t1)
                statuses[status] += 1
                if status == 200 and b'"orderStatus"' not in body:
                    bad_bodies += 1

    async def run_httpx(index: int) -> None:
        nonlocal budget, bad_bodies, completed
        mine, client = paths[index], clients[index]
        position = 0
        while budget > 0:
            t0 = time.monotonic()
            if t0 >= stop_at:
                return
            budget -= 1
            path, headers = mine[position]
            try:
                response = await client.get(path, headers=headers)
            except Exception as error:  # noqa: BLE001 - counted and reported, never fatal
                errors[type(error).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            t1 = time.monotonic()
            completed += 1
            position = (position + 1) % len(mine)
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                finished.append(t1)
                statuses[response.status_code] += 1
                if response.status_code == 200 and b'"orderStatus"' not in response.content:
                    bad_bodies += 1

    async def ticker() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(1.0)
            channel.send(("tick", len(latencies)))

    runner = run_raw if spec.engine == "raw" else run_httpx
    tick = asyncio.create_task(ticker())
    try:
        await asyncio.wait_for(asyncio.gather(*(runner(i) for i in range(spec.connections))),
                               timeout=stop_at - time.monotonic() + 30)
    finally:
        tick.cancel()
        if spec.engine == "raw":
            for conn in conns:
                conn.close()
        else:
            for client in clients:
                await client.aclose()
    return {"latencies": latencies, "finished": finished, "statuses": dict(statuses),
            "bad_bodies": bad_bodies, "completed": completed, "errors": dict(errors)}


async def run(ctx: Context) -> ScenarioResult:
    concurrency = int(ctx.option("concurrency"))
    order_count = int(ctx.option("orders"))
    duration = float(ctx.option("duration"))
    warmup = min(float(ctx.option("warmup")), duration / 4)
    processes = int(ctx.option("processes")) or default_processes()
    processes = max(1, min(processes, concurrency))
    engine = ctx.option("engine")
    target = ctx.targets[0]
    result = ScenarioResult(NAME, {
        "url": target.base_url, "concurrency": concurrency, "orders": order_count,
        "durationSeconds": duration, "warmupSeconds": warmup, "clientProcesses": processes,
        "engine": engine,
    }, at_target_size=concurrency == 64 and duration >= 5)

    store = await ctx.population.new_store(NAME)
    orders = await ctx.population.create_orders(store, order_count, accept=True, progress=ctx.progress)
    pairs = [(o.id, o.owner_token) for o in orders]
    # Connection c polls orders c, c+concurrency, ...: distinct orders per connection.
    slices = [pairs[c::concurrency] or [pairs[c % len(pairs)]] for c in range(concurrency)]
    per_process = [list(range(p, concurrency, processes)) for p in range(processes)]
    specs = [PollSpec(target.base_url, target.host, target.port, engine, len(idx),
                      [slices[i] for i in idx], int(ctx.option("max_requests")) // processes)
             for idx in per_process]

    before = await ctx.probe.scrape()
    cpu_before = await ctx.probe.cpu_seconds(before)
    with WorkerPool(poll_worker, specs) as pool:
        await pool.gather(timeout=60)
        start_at = time.monotonic() + 0.3
        measure_from, stop_at = start_at + warmup, start_at + duration
        pool.broadcast(("go", start_at, measure_from, stop_at))
        ticks = [0] * processes

        def on_tick(index: int, message: tuple) -> None:
            ticks[index] = message[1]
            elapsed = time.monotonic() - start_at
            ctx.progress.update(f"{elapsed:5.1f}/{duration:g} s  {sum(ticks):,} polls measured")

        outputs = await pool.collect(timeout=duration + 60, on_message=on_tick)
    after = await ctx.probe.scrape()
    cpu_after = await ctx.probe.cpu_seconds(after)

    latencies = [x for out in outputs for x in out["latencies"]]
    finished = [x for out in outputs for x in out["finished"]]
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for out in outputs:
        statuses.update(out["statuses"])
        errors.update(out["errors"])
    measured = duration - warmup
    total = len(latencies)
    ok = statuses.get(200, 0) + statuses.get(304, 0)
    throughput = total / measured if measured > 0 else float("nan")
    summary = summarize(latencies)

    result.add("throughput_rps", "throughput (all answers)", throughput, "req/s",
               f">= {TARGET_RPS:,}", throughput >= TARGET_RPS)
    result.add("ok_rps", "throughput (200/304 only)", ok / measured if measured > 0 else None, "req/s")
    result.add_distribution("poll", "latency", summary, {"p99": TARGET_P99_MS})
    result.add("polls", "polls measured", total)
    result.add("status_200", "answers 200", statuses.get(200, 0))
    result.add("status_429", "answers 429 (rate limited)", statuses.get(429, 0))
    other = {s: n for s, n in statuses.items() if s not in (200, 429)}
    result.add("status_other", "answers other", sum(other.values()))
    result.add("bad_bodies", "200s without orderStatus", sum(o["bad_bodies"] for o in outputs))
    result.add("client_errors", "connection errors", sum(errors.values()))
    # Reads per poll counts every poll of the run, warm-up included, as the scrapes do.
    polls_all = sum(o["completed"] for o in outputs)
    reads = db_reads(before, after)
    result.add("db_reads_per_poll", "db reads per poll", reads / polls_all if reads is not None and polls_all else None,
               "reads")
    if cpu_before is not None and cpu_after is not None:
        cpu = cpu_after - cpu_before
        result.add("server_cpu_s", "server CPU during run", cpu, "s")
        result.add("server_cpu_per_poll_us", "server CPU per poll", cpu / polls_all * 1e6 if polls_all else None, "µs")
    result.params["dbCommands"] = db_commands(before, after)
    result.params["statusCounts"] = {str(k): v for k, v in sorted(statuses.items())}
    if errors:
        result.params["clientErrors"] = dict(errors)
    if statuses.get(429, 0) > 0.01 * max(total, 1):
        result.notes.append(
            f"{statuses[429]:,} of {total:,} polls were rate limited (429): start the server with "
            "POLL_MIN_INTERVAL_SECONDS=0 to measure throughput, or give more --orders.")
    if reads is None:
        result.notes.append("the server exposes no orderpulse_db_commands_total: db reads per poll is n/a.")
    first = min(finished, default=0.0)
    series = _per_second(latencies, finished, first)
    result.timelines["throughput req/s"] = [(t, n) for t, n, _ in series]
    result.timelines["p99 latency ms"] = [(t, p) for t, _, p in series]
    return result


def _per_second(latencies: list[float], finished: list[float], start: float) -> list[tuple[float, float, float]]:
    buckets: dict[int, list[float]] = {}
    for latency, end in zip(latencies, finished):
        buckets.setdefault(int(end - start), []).append(latency)
    out = []
    for second in sorted(buckets):
        values = sorted(buckets[second])
        p99 = values[min(len(values) - 1, int(0.99 * len(values)))] * 1000
        out.append((second + 0.5, float(len(values)), p99))
    return out
