"""HTTP load for throughput scenarios: `wrk` when it is installed, else the bench's Python client.

Both clients send the same requests (a path and a bearer token each, cycled), over the same
number of keep-alive connections, for a warm-up and then a measured period, and report the same
`LoadResult`, so a scenario can drive the server under test and its floor identically.
"""

from __future__ import annotations

import asyncio
import os
import re
import resource
import shutil
import subprocess
import tempfile
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server.bench.progress import Progress
from server.bench.rawhttp import RawConnection, build_get
from server.bench.stats import summarize
from server.bench.workers import Channel, WorkerPool

CLIENTS = ("auto", "wrk", "python")


class ClientUnavailable(RuntimeError):
    """`--client wrk` was asked for and wrk is not on PATH."""


@dataclass
class LoadSpec:
    """What to send, where, and for how long."""

    host: str
    port: int
    requests: list[tuple[str, str]]  # (path, bearer token), cycled
    concurrency: int
    threads: int  # wrk threads, or Python client processes
    warmup: float  # seconds of load before measuring
    duration: float  # seconds measured after the warm-up
    max_requests: int = 5_000_000  # Python client only: stop after this many in all
    pipeline: int = 1  # wrk only: requests written at once on a connection (HTTP/1.1 pipelining)


@dataclass
class LoadResult:
    client: str  # "wrk 4.1.0" or "python"
    measured_seconds: float
    answers: int  # responses in the measured period
    ok: int  # 2xx and 3xx among them
    statuses: dict[str, int]  # exact codes (Python client) or "2xx/3xx" and "other" (wrk)
    errors: dict[str, int]
    latency: dict[str, float]  # count, p50, p90, p99, max, mean in ms
    total_requests: int  # warm-up included
    bad_bodies: int | None = None  # 200s without the expected marker; Python client only
    # The load generator's own CPU (user + system), warm-up included; wrk only, whose process is
    # a child the bench waits for, so its usage is counted exactly.
    client_cpu_seconds: float | None = None
    timelines: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    @property
    def rps(self) -> float:
        return self.answers / self.measured_seconds if self.measured_seconds > 0 else float("nan")


def choose_client(wanted: str) -> str | None:
    """The wrk executable for "auto"/"wrk" when it is installed; None means the Python client."""
    if wanted not in CLIENTS:
        raise ClientUnavailable(f"--client must be one of {', '.join(CLIENTS)} (got {wanted!r})")
    if wanted == "python":
        return None
    path = shutil.which("wrk")
    if path is None and wanted == "wrk":
        raise ClientUnavailable("--client wrk: wrk is not installed (apt-get install wrk)")
    return path


async def run_load(spec: LoadSpec, wrk: str | None, progress: Progress, *, marker: bytes = b"") -> LoadResult:
    """Warm up, then measure, with wrk when its path is given, else with the Python client."""
    if wrk:
        return await asyncio.to_thread(_run_wrk, wrk, spec, progress)
    return await _run_python(spec, progress, marker)


# --- wrk ----------------------------------------------------------------------------------

# Each wrk thread builds every request once, then cycles through them from its own offset.
_LUA = """\
local paths = {%(paths)s}
local tokens = {%(tokens)s}
local requests = {}
local position = 0
local threads = 0

function setup(thread)
  thread:set("offset", threads)
  threads = threads + 1
end

function init(args)
  for i = 1, #paths do
    requests[i] = wrk.format("GET", paths[i], {["Authorization"] = "Bearer " .. tokens[i],
                                               ["Accept"] = "application/json"})
  end
  position = (offset or 0) * 7919 %% #requests
end

function request()
  local batch = {}
  for i = 1, %(pipeline)d do
    position = position %% #requests + 1
    batch[i] = requests[position]
  end
  return table.concat(batch)
end
"""

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


def lua_script(requests: list[tuple[str, str]], pipeline: int = 1) -> str:
    """The wrk script sending `requests` (paths and tokens are URL and token characters only)."""
    for path, token in requests:
        if re.search(r'["\\\s]', path + token):
            raise ValueError(f"unexpected character in {path!r} or its token")
    return _LUA % {"paths": ", ".join(f'"{p}"' for p, _ in requests),
                   "tokens": ", ".join(f'"{t}"' for _, t in requests), "pipeline": pipeline}


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS[unit]


def parse_wrk(output: str) -> dict[str, float]:
    """Numbers from wrk's report with --latency: answers, seconds, errors, latency percentiles in ms."""
    found: dict[str, float] = {}
    summary = re.search(r"(\d+) requests in " + _TIME, output)
    if not summary:
        raise RuntimeError(f"wrk printed no summary: {output.strip()[-300:]!r}")
    found["answers"] = float(summary.group(1))
    found["seconds"] = _ms(summary.group(2), summary.group(3)) / 1000
    latency = re.search(r"Latency\s+" + _TIME + r"\s+" + _TIME + r"\s+" + _TIME, output)
    if latency:
        found["mean"] = _ms(latency.group(1), latency.group(2))
        found["max"] = _ms(latency.group(5), latency.group(6))
    for percent, value, unit in re.findall(r"^\s+(\d+)%\s+" + _TIME + r"\s*$", output, re.MULTILINE):
        found[f"p{percent}"] = _ms(value, unit)
    other = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    found["other"] = float(other.group(1)) if other else 0.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    for name, count in zip(("connect", "read", "write", "timeout"), errors.groups() if errors else ()):
        found[f"error_{name}"] = float(count)
    return found


def _wrk_once(wrk: str, spec: LoadSpec, script: Path, seconds: int) -> dict[str, float]:
    command = [wrk, f"-t{spec.threads}", f"-c{spec.concurrency}", f"-d{seconds}s", "--timeout", "10s",
               "--latency", "-s", str(script), f"http://{spec.host}:{spec.port}/"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {(done.stderr or done.stdout).strip()[-300:]}")
    found = parse_wrk(done.stdout)
    found["cpu_seconds"] = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return found


def wrk_version(wrk: str) -> str:
    """'wrk 4.1.0' from `wrk -v` (which exits 1 after printing its usage)."""
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, timeout=10)
    match = re.search(r"wrk (?:\S*/)?([\d.]+)", done.stdout + done.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def _run_wrk(wrk: str, spec: LoadSpec, progress: Progress) -> LoadResult:
    # wrk takes whole seconds; a warm-up is at least one of them.
    warmup = max(1, round(spec.warmup)) if spec.warmup > 0 else 0
    measured = max(1, round(spec.duration))
    with tempfile.TemporaryDirectory(prefix="orderpulse-bench-") as folder:
        script = Path(folder) / "requests.lua"
        script.write_text(lua_script(spec.requests, spec.pipeline))
        before = warmup_cpu = 0.0
        if warmup:
            progress.update(f"wrk warm-up {warmup} s", force=True)
            warming = _wrk_once(wrk, spec, script, warmup)
            before, warmup_cpu = warming["answers"], warming["cpu_seconds"]
        progress.update(f"wrk {measured} s at {spec.concurrency} connections", force=True)
        numbers = _wrk_once(wrk, spec, script, measured)
    answers = int(numbers["answers"])
    other = int(numbers["other"])
    errors = {k.removeprefix("error_"): int(v) for k, v in numbers.items() if k.startswith("error_") and v}
    latency: dict[str, float] = {"count": answers}
    if spec.pipeline == 1:  # pipelined, wrk times whole batches (and its percentiles come out wrong)
        latency.update({k: numbers.get(k, float("nan")) for k in ("p50", "p90", "p99", "max", "mean")})
    return LoadResult(client=wrk_version(wrk), measured_seconds=numbers["seconds"], answers=answers,
                      ok=answers - other, statuses={"2xx/3xx": answers - other, "other": other},
                      errors=errors, latency=latency, total_requests=answers + int(before),
                      client_cpu_seconds=warmup_cpu + numbers["cpu_seconds"])


# --- the Python client --------------------------------------------------------------------


@dataclass
class _WorkerSpec:
    host: str
    port: int
    slices: list[list[tuple[str, str]]]  # one list of (path, token) per connection
    max_requests: int
    marker: bytes


async def _python_worker(channel: Channel, spec: _WorkerSpec) -> dict[str, Any]:
    """Open the connections, wait for "go", send until the stop time or the request budget."""
    host_header = f"{spec.host}:{spec.port}"
    requests = [[build_get(host_header, path, token) for path, token in s] for s in spec.slices]
    latencies, finished = array("d"), array("d")
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    counts = {"bad_bodies": 0, "completed": 0, "budget": spec.max_requests}
    conns = [RawConnection(spec.host, spec.port) for _ in spec.slices]
    for conn in conns:
        await conn.connect()
    channel.send(("ready",))
    _, start_at, measure_from, stop_at = await channel.recv()
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))

    async def connection(index: int) -> None:
        conn, mine = conns[index], requests[index]
        position = 0
        monotonic = time.monotonic
        while counts["budget"] > 0:
            t0 = monotonic()
            if t0 >= stop_at:
                return
            counts["budget"] -= 1
            try:
                status, body = await conn.request(mine[position])
            except (ConnectionError, OSError) as error:
                errors[type(error).__name__] += 1
                await asyncio.sleep(0.01)
                continue
            t1 = monotonic()
            counts["completed"] += 1
            position = (position + 1) % len(mine)
            if t0 >= measure_from:
                latencies.append(t1 - t0)
                finished.append(t1)
                statuses[status] += 1
                if status == 200 and spec.marker not in body:
                    counts["bad_bodies"] += 1

    async def ticker() -> None:
        while time.monotonic() < stop_at:
            await asyncio.sleep(1.0)
            channel.send(("tick", len(latencies)))

    tick = asyncio.create_task(ticker())
    try:
        await asyncio.wait_for(asyncio.gather(*(connection(i) for i in range(len(conns)))),
                               timeout=stop_at - time.monotonic() + 30)
    finally:
        tick.cancel()
        for conn in conns:
            conn.close()
    return {"latencies": latencies, "finished": finished, "statuses": dict(statuses),
            "bad_bodies": counts["bad_bodies"], "completed": counts["completed"], "errors": dict(errors)}


async def _run_python(spec: LoadSpec, progress: Progress, marker: bytes) -> LoadResult:
    processes = max(1, min(spec.threads, spec.concurrency))
    # Connection c sends requests c, c+concurrency, ...: distinct requests per connection.
    slices = [spec.requests[c::spec.concurrency] or [spec.requests[c % len(spec.requests)]]
              for c in range(spec.concurrency)]
    specs = [_WorkerSpec(spec.host, spec.port, slices[p::processes], spec.max_requests // processes, marker)
             for p in range(processes)]
    total = spec.warmup + spec.duration
    with WorkerPool(_python_worker, specs) as pool:
        await pool.gather(timeout=60)
        start_at = time.monotonic() + 0.3
        measure_from, stop_at = start_at + spec.warmup, start_at + total
        pool.broadcast(("go", start_at, measure_from, stop_at))
        ticks = [0] * processes

        def on_tick(index: int, message: tuple[Any, ...]) -> None:
            ticks[index] = message[1]
            progress.update(f"{time.monotonic() - start_at:5.1f}/{total:g} s  {sum(ticks):,} answers measured")

        outputs = await pool.collect(timeout=total + 60, on_message=on_tick)
    latencies = [x for out in outputs for x in out["latencies"]]
    finished = [x for out in outputs for x in out["finished"]]
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for out in outputs:
        statuses.update(out["statuses"])
        errors.update(out["errors"])
    ok = sum(n for status, n in statuses.items() if 200 <= status < 400)
    series = _per_second(latencies, finished, min(finished, default=0.0))
    return LoadResult(
        client="python", measured_seconds=spec.duration, answers=len(latencies), ok=ok,
        statuses={str(k): v for k, v in sorted(statuses.items())}, errors=dict(errors),
        latency=summarize(latencies), total_requests=sum(o["completed"] for o in outputs),
        bad_bodies=sum(o["bad_bodies"] for o in outputs),
        timelines={"throughput req/s": [(t, n) for t, n, _ in series],
                   "p99 latency ms": [(t, p) for t, _, p in series]})


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


def default_threads() -> int:
    """Client threads or processes: the server needs a core of its own, so one on a 2-core box."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores - 2)
