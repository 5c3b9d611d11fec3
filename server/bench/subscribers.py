"""Subscriber processes and the change driver shared by sockets, fanout, latency and deadlines.

A subscriber worker opens its sockets, subscribes each (store or order ids), reports "ready",
records the receipt time of every event until told to stop, then closes its sockets. Receipt
times are CLOCK_MONOTONIC, which is system-wide on Linux, so the parent compares them directly
with the times its API calls returned.
"""

from __future__ import annotations

import asyncio
import math
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from server.bench.api import Api, error_message
from server.bench.fixtures import Order
from server.bench.progress import Progress
from server.bench.rawhttp import RawPool, build_with_body
from server.bench.workers import Channel, WorkerPool
from server.bench.wsclient import open_socket, subscribe

# Fields of the event's order kept (once per key) for scenarios that need them.
KEPT_FIELDS = ("cancelledAt", "cancellationReason", "updatedAt", "version")


@dataclass
class SubscriberSpec:
    ws_base: str
    # One entry per socket: (token, {"storeId": ...} or {"orderIds": [...]} or {} for none).
    sockets: list[tuple[str, dict[str, Any]]]
    parallel: int = 100
    compression: bool = False
    record: bool = True


async def subscriber_worker(channel: Channel, spec: SubscriberSpec) -> dict[str, Any]:
    receipts: dict[str, array[float]] = {}
    kept: dict[str, dict[str, Any]] = {}
    order_problems: Counter[str] = Counter()
    handshakes = array("d")
    errors: Counter[str] = Counter()
    sockets: list[Any] = []
    readers: list[asyncio.Task[None]] = []
    semaphore = asyncio.Semaphore(spec.parallel)
    connected = 0
    largest_frame = 0  # bytes of the largest frame read after subscribing (the fan-out floor's frame size)

    def on_event(message: dict[str, Any], received: float, versions: dict[str, int]) -> None:
        if message.get("type") != "order":
            return
        order = message.get("order") or {}
        order_id = str(order.get("id"))
        version = message.get("version", order.get("version"))
        last = versions.get(order_id)
        if last is not None and version is not None:
            if version < last:
                order_problems["older_after_newer"] += 1
            elif version == last:
                order_problems["duplicate"] += 1
        if version is not None and (last is None or version > last):
            versions[order_id] = version
        key = f"{order_id}:{order.get('orderStatus')}"
        times = receipts.get(key)
        if times is None:
            times = receipts[key] = array("d")
            kept[key] = {f: order.get(f) for f in KEPT_FIELDS}
        times.append(received)

    async def read(socket: Any, versions: dict[str, int]) -> None:
        nonlocal largest_frame
        loads, monotonic = orjson.loads, time.monotonic
        try:
            async for raw in socket:
                if spec.record:
                    on_event(loads(raw), monotonic(), versions)
                    largest_frame = max(largest_frame, len(raw))
        except Exception as error:  # noqa: BLE001 - a dropped socket is counted, not fatal
            errors[f"read:{type(error).__name__}"] += 1

    async def open_one(token: str, subscription: dict[str, Any]) -> None:
        nonlocal connected
        async with semaphore:
            started = time.monotonic()
            try:
                socket = await open_socket(spec.ws_base, token, compression=spec.compression)
            except Exception as error:  # noqa: BLE001
                errors[f"connect:{type(error).__name__}"] += 1
                return
            versions: dict[str, int] = {}

            def early_frame(message: dict[str, Any], received: float) -> None:
                if spec.record:
                    on_event(message, received, versions)

            try:
                if subscription:
                    await subscribe(socket, order_ids=subscription.get("orderIds"),
                                    store_id=subscription.get("storeId"), on_frame=early_frame)
            except Exception as error:  # noqa: BLE001
                errors[f"subscribe:{type(error).__name__}"] += 1
                await socket.close()
                return
            handshakes.append(time.monotonic() - started)
            sockets.append(socket)
            readers.append(asyncio.create_task(read(socket, versions)))
            connected += 1

    channel.send(("ready",))
    await channel.recv()  # "connect"
    began = time.monotonic()
    opening = asyncio.gather(*(open_one(t, s) for t, s in spec.sockets))
    while not opening.done():
        await asyncio.wait([opening], timeout=1.0)
        channel.send(("tick", connected))
    await opening
    channel.send(("connected", {"connected": connected, "seconds": time.monotonic() - began,
                                "errors": dict(errors), "handshakes": handshakes}))
    await channel.recv()  # "stop"
    still_open = sum(1 for s in sockets if s.state.name == "OPEN")
    for reader in readers:
        reader.cancel()
    for i in range(0, len(sockets), 500):
        await asyncio.gather(*(s.close() for s in sockets[i:i + 500]), return_exceptions=True)
    return {"receipts": receipts, "kept": kept, "errors": dict(errors), "still_open": still_open,
            "order_problems": dict(order_problems), "largest_frame": largest_frame}


async def connect_subscribers(pool: WorkerPool, planned: int, progress: Progress) -> tuple[list[dict[str, Any]], float]:
    """Start the subscriber workers' sockets; their "connected" reports and the seconds it took."""
    await pool.gather(timeout=60)
    began = time.monotonic()
    pool.broadcast(("connect",))
    ticks = [0] * len(pool.conns)

    def on_tick(index: int, message: tuple[Any, ...]) -> None:
        ticks[index] = message[1]
        progress.update(f"{sum(ticks):,}/{planned:,} subscribers connected")

    reports = [m[1] for m in await pool.until("connected", max(120.0, planned / 50), on_tick)]
    return reports, time.monotonic() - began


def merge_receipts(outputs: list[dict[str, Any]]) -> tuple[dict[str, list[float]], dict[str, dict[str, Any]]]:
    receipts: dict[str, list[float]] = {}
    kept: dict[str, dict[str, Any]] = {}
    for out in outputs:
        for key, times in out["receipts"].items():
            receipts.setdefault(key, []).extend(times)
        kept.update(out["kept"])
    return receipts, kept


def split(items: list[Any], parts: int) -> list[list[Any]]:
    """Round-robin `items` into `parts` non-empty lists (fewer when there are fewer items)."""
    parts = max(1, min(parts, len(items)))
    return [items[i::parts] for i in range(parts)]


# Staff moves an accepted order through these, one event each; the last leaves no deadline behind.
CHAIN = ("processing", "ready", "cancelled")


@dataclass
class ChangeLog:
    """When each change was sent and when its API call returned, keyed like events are."""

    sent: dict[str, float] = field(default_factory=dict)
    returned: dict[str, float] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)
    started: float = 0.0
    finished: float = 0.0


# Connections the change driver keeps to the server, each carrying one call at a time.
CHANGE_CONNECTIONS = 64
CHANGE_TIMEOUT_SECONDS = 60.0


def orders_for_changes(changes: int) -> int:
    return max(1, math.ceil(changes / len(CHAIN)))


async def drive_changes(api: Api, staff_tokens: list[str], orders: list[Order], *, rate: float,
                        changes: int, progress: Progress) -> ChangeLog:
    """Open-loop: change i is sent at start + i/rate whatever the earlier calls are doing.

    Change i moves order i % n to the next status of CHAIN, so one order's changes are n/rate
    seconds apart; a change still waits for the same order's previous call to return.
    """
    log = ChangeLog()
    count = len(orders)
    previous: dict[int, asyncio.Task[None]] = {}
    tasks: list[asyncio.Task[None]] = []
    # The lean client, not httpx: at ~1.6 ms of the bench's CPU per call httpx capped the changes
    # near 130/s with the server a fifth busy, so the bench measured itself (rawhttp.py).
    target = urlsplit(api.base_url)
    host = target.hostname or "127.0.0.1"
    pool = RawPool(host, target.port or 80, CHANGE_CONNECTIONS)
    host_header = target.netloc

    async def change(i: int, after: asyncio.Task[None] | None) -> None:
        if after is not None:
            await asyncio.wait([after])
        order = orders[i % count]
        status = CHAIN[i // count]
        key = f"{order.id}:{status}"
        token = staff_tokens[i % len(staff_tokens)]
        request = build_with_body("PATCH", host_header, f"/api/orders/{order.id}/status", token,
                              orjson.dumps({"status": status}))
        log.sent[key] = time.monotonic()
        try:
            answered, body = await asyncio.wait_for(pool.request(request), CHANGE_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - counted; the run goes on
            log.errors[type(error).__name__] += 1
            return
        if answered != 200:
            log.errors[f"{answered} {error_message(body)}"] += 1
            return
        log.returned[key] = time.monotonic()

    log.started = time.monotonic()
    for i in range(changes):
        due = log.started + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(change(i, previous.get(i % count)))
        previous[i % count] = task
        tasks.append(task)
        if i % 50 == 0:
            progress.update(f"{i:,}/{changes:,} changes sent")
    try:
        await asyncio.gather(*tasks)
    finally:
        pool.close()
    log.finished = time.monotonic()
    return log



def delivery_latencies(log: ChangeLog, receipts: dict[str, list[float]]) -> tuple[list[float], list[float], int]:
    """(return→receipt, send→receipt, receipts that beat the API answer), in seconds.

    An event may reach a subscriber before the API call that caused it has returned; such a
    delivery counts as 0 in return→receipt and is counted separately.
    """
    from_return: list[float] = []
    from_send: list[float] = []
    early = 0
    for key, returned in log.returned.items():
        sent = log.sent[key]
        for received in receipts.get(key, ()):
            gap = received - returned
            if gap < 0:
                early += 1
                gap = 0.0
            from_return.append(gap)
            from_send.append(received - sent)
    return from_return, from_send, early
