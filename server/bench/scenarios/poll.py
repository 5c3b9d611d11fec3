"""poll: poll-status throughput and latency at a fixed concurrency, real tokens, many orders.

Each request polls an order as its owner (so the server verifies the JWT and the ownership
every time), cycling through many orders. The load comes from `wrk` when it is installed
(`--client auto`), else from the bench's own client processes (`--client python`). In the same
run, with the same client, concurrency and duration, the same requests go to a bare Starlette
endpoint answering a body of the same size in a uvicorn process with the server's options: the
floor, and each result's ratio to it. Run the server with POLL_MIN_INTERVAL_SECONDS=0: with the
default 1 s limit most polls of a fast client answer 429, which this scenario counts.

On a shared machine the two runs see different moments (a round's ratio spread 0.6-1.1 with the
same code): `--set slices=N` measures the server and the floor in N alternating pairs of short runs
instead (server then floor, then floor then server, ...), each figure summed over its slices, and
reports each pair's ratio beside the whole.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections import Counter
from pathlib import Path

from server.bench.floors import HttpFloor
from server.bench.loadgen import LoadResult, LoadSpec, choose_client, default_threads, run_load
from server.bench.metrics import db_commands, db_reads
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context

NAME = "poll"
HELP = "poll-status throughput and latency percentiles at a given concurrency, and their floor"
DEFAULTS = {"concurrency": 64, "orders": 2000, "duration": 15.0, "warmup": 3.0,
            "processes": 0, "client": "auto", "max_requests": 5_000_000, "pipeline": 1, "slices": 1}
TARGET_RPS = 15_000
TARGET_P99_MS = 10.0
# Every poll-status answer names the order's status; the Python client checks each 200 for it.
BODY_MARKER = b'"orderStatus"'


async def run(ctx: Context) -> ScenarioResult:
    concurrency = int(ctx.option("concurrency"))
    duration = float(ctx.option("duration"))
    warmup = min(float(ctx.option("warmup")), duration / 4)
    threads = max(1, min(int(ctx.option("processes")) or default_threads(), concurrency))
    wrk = choose_client(ctx.option("client"))
    target = ctx.targets[0]
    result = ScenarioResult(NAME, {
        "url": target.base_url, "concurrency": concurrency, "orders": int(ctx.option("orders")),
        "durationSeconds": duration, "warmupSeconds": warmup, "clientThreads": threads,
        "pipeline": int(ctx.option("pipeline")),
    }, at_target_size=concurrency == 64 and duration >= 5)

    store = await ctx.population.new_store(NAME)
    orders = await ctx.population.create_orders(store, int(ctx.option("orders")), accept=True,
                                                progress=ctx.progress)
    requests = [(f"/api/orders/{o.id}/poll-status", o.owner_token) for o in orders]
    sample = await ctx.api.http.get(requests[0][0], headers={"authorization": f"Bearer {requests[0][1]}"})
    if sample.status_code != 200 or BODY_MARKER not in sample.content:
        raise RuntimeError(f"poll-status answered {sample.status_code}: {sample.content[:200]!r}")
    pipeline = int(ctx.option("pipeline"))
    if pipeline < 1 or (pipeline > 1 and wrk is None):
        raise ValueError("--pipeline must be at least 1, and above 1 needs wrk")
    spec = LoadSpec(target.host, target.port, requests, concurrency, threads, warmup, duration - warmup,
                    int(ctx.option("max_requests")), pipeline)

    slices = int(ctx.option("slices"))
    if slices < 1:
        raise ValueError("--set slices= must be at least 1")
    # Each slice warms up again (new connections); the measured time is split between the slices.
    sliced = dataclasses.replace(spec, warmup=warmup if slices == 1 else min(warmup, 1.0),
                                 duration=(duration - warmup) / slices)
    before = await ctx.probe.scrape()
    # The cost window (server and database CPU, commands) spans the first server slice alone.
    window = await ctx.cost_window()
    served_runs: list[LoadResult] = []
    bare_runs: list[LoadResult] = []
    cpu: float | None = 0.0
    floor_cpu: float | None = 0.0
    with tempfile.TemporaryDirectory(prefix="orderpulse-bench-floor-") as folder:
        ctx.progress.note(f"floor: a bare Starlette endpoint, {len(sample.content)}-byte body, same client"
                          + (f"; {slices} alternating slices" if slices > 1 else ""))
        floor = await HttpFloor(sample.content, Path(folder)).start(requests[0][0])
        try:
            for index in range(slices):
                for which in (("server", "floor") if index % 2 == 0 else ("floor", "server")):
                    if which == "server":
                        cpu_before = await ctx.probe.cpu_seconds(await ctx.probe.scrape())
                        served_runs.append(await run_load(sliced, wrk, ctx.progress, marker=BODY_MARKER))
                        if len(served_runs) == 1:
                            await window.stop()
                        cpu_after = await ctx.probe.cpu_seconds(await ctx.probe.scrape())
                        cpu = None if cpu is None or cpu_before is None or cpu_after is None \
                            else cpu + cpu_after - cpu_before
                    else:
                        floor_before = floor.cpu_seconds()
                        bare_runs.append(await run_load(dataclasses.replace(sliced, host="127.0.0.1", port=floor.port),
                                                        wrk, ctx.progress, marker=BODY_MARKER))
                        floor_after = floor.cpu_seconds()
                        floor_cpu = None if floor_cpu is None or floor_before is None or floor_after is None \
                            else floor_cpu + floor_after - floor_before
        finally:
            floor.stop()
    after = await ctx.probe.scrape()
    served, bare = merged(served_runs), merged(bare_runs)
    if slices > 1:
        result.params["sliceRatios"] = [round(s.rps / b.rps, 3) if b.rps else None
                                        for s, b in zip(served_runs, bare_runs)]
        result.notes.append(f"{slices} alternating slices of {sliced.duration:g} s each (after {sliced.warmup:g} s of "
                            "warm-up each): throughputs are sums over the slices; latency percentiles are each "
                            "slice's, averaged by their counts (max: the largest).")

    result.params["client"] = served.client
    result.params["bodyBytes"] = len(sample.content)
    _report_load(result, served)
    result.add("floor_rps", "floor: bare Starlette endpoint", bare.rps, "req/s")
    result.add_distribution("floor", "floor latency", bare.latency)
    result.add("floor_ratio_rps", "throughput / floor", served.rps / bare.rps if bare.rps else None, "x")
    p99, floor_p99 = served.latency.get("p99"), bare.latency.get("p99")
    result.add("floor_ratio_p99", "p99 / floor p99", p99 / floor_p99 if p99 and floor_p99 else None, "x")
    reads = db_reads(before, after)
    # Reads per poll counts every poll of the run, warm-up included, as the scrapes do.
    polls_all = served.total_requests
    result.add("db_reads_per_poll", "db reads per poll", reads / polls_all if reads is not None and polls_all else None,
               "reads")
    if cpu is not None:
        result.add("server_cpu_s", "server CPU during run", cpu, "s")
        result.add("server_cpu_per_poll_us", "server CPU per poll", cpu / polls_all * 1e6 if polls_all else None, "µs")
    if served.client_cpu_seconds is not None and polls_all:
        # What the load takes from the same cores: it bounds what a second worker can add here.
        result.add("client_cpu_per_poll_us", "load generator (wrk) CPU per poll",
                   served.client_cpu_seconds / polls_all * 1e6, "µs")
    if floor_cpu is not None and bare.total_requests:
        result.add("floor_cpu_per_request_us", "floor CPU per request", floor_cpu / bare.total_requests * 1e6, "µs")
    result.params["dbCommands"] = db_commands(before, after)
    first = served_runs[0].total_requests
    await window.close(result, operations=first, api_calls=first, what="polls")
    result.params["floorStatusCounts"] = bare.statuses
    if bare.ok != bare.answers or bare.errors:
        result.notes.append(f"the floor answered {bare.answers - bare.ok:,} non-2xx/3xx and "
                            f"{sum(bare.errors.values()):,} connection errors: its figures are suspect.")
    if reads is None:
        result.notes.append("the server exposes no orderpulse_db_commands_total: db reads per poll is n/a.")
    if pipeline > 1:
        result.notes.append(f"pipelined ({pipeline} requests at once per connection): wrk times batches, "
                            "not requests, so no latency percentiles are reported; judge throughput and CPU.")
    if wrk is None:
        result.notes.append("client: the bench's Python client (wrk not used), which takes client CPU "
                            "from the same cores; install wrk (apt-get install wrk) for the figures the README gives.")
    result.timelines.update(served.timelines)
    return result


def _report_load(result: ScenarioResult, served: LoadResult) -> None:
    """Rows of the server's own run: throughput, latency, answers, errors."""
    result.add("throughput_rps", "throughput (all answers)", served.rps, "req/s",
               f">= {TARGET_RPS:,}", served.rps >= TARGET_RPS)
    result.add("ok_rps", "throughput (2xx/3xx only)",
               served.ok / served.measured_seconds if served.measured_seconds > 0 else None, "req/s")
    result.add_distribution("poll", "latency", served.latency, {"p99": TARGET_P99_MS})
    result.add("polls", "polls measured", served.answers)
    result.add("status_ok", "answers 2xx/3xx", served.ok)
    if served.bad_bodies is not None:  # the Python client sees exact codes and bodies; wrk counts non-2xx/3xx
        result.add("status_429", "answers 429 (rate limited)", served.statuses.get("429", 0))
        result.add("bad_bodies", "200s without orderStatus", served.bad_bodies)
    result.add("status_other", "answers other", served.answers - served.ok)
    result.add("client_errors", "connection errors", sum(served.errors.values()))
    result.params["statusCounts"] = served.statuses
    if served.errors:
        result.params["clientErrors"] = served.errors
    limited = served.answers - served.ok if served.bad_bodies is None else served.statuses.get("429", 0)
    if limited > 0.01 * max(served.answers, 1):
        result.notes.append(
            f"{limited:,} of {served.answers:,} polls were not 2xx/3xx (429 when rate limited): start the "
            "server with POLL_MIN_INTERVAL_SECONDS=0 to measure throughput, or give more --orders.")


def merged(runs: list[LoadResult]) -> LoadResult:
    """Slices of one load as one: counts and times summed; latency percentiles averaged by count."""
    if len(runs) == 1:
        return runs[0]
    counts = [run.latency.get("count", 0) or 0 for run in runs]
    total = sum(counts)
    latency: dict[str, float] = {"count": total}
    for key in {key for run in runs for key in run.latency} - {"count"}:
        values = [(run.latency[key], count) for run, count in zip(runs, counts) if key in run.latency]
        if key == "max":
            latency[key] = max(value for value, _ in values)
        elif total:
            latency[key] = sum(value * count for value, count in values) / total
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()
    timelines: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        statuses.update(run.statuses)
        errors.update(run.errors)
        for name, points in run.timelines.items():
            timelines.setdefault(name, []).extend(points)
    cpu = [run.client_cpu_seconds for run in runs]
    bad = [run.bad_bodies for run in runs]
    return LoadResult(
        client=runs[0].client, measured_seconds=sum(run.measured_seconds for run in runs),
        answers=sum(run.answers for run in runs), ok=sum(run.ok for run in runs), statuses=dict(statuses),
        errors=dict(errors), latency=latency, total_requests=sum(run.total_requests for run in runs),
        bad_bodies=None if None in bad else sum(b for b in bad if b is not None),
        client_cpu_seconds=None if None in cpu else sum(c for c in cpu if c is not None), timelines=timelines)
