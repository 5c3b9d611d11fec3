"""What the uvicorn adapter buys, measured: server memory per idle subscribed socket and the
server's wake-ups per second, with the adapter and with ORDERPULSE_UVICORN_ADAPTER=off, back to back.

    .venv/bin/python -m tests.measure_idle_sockets --sockets 2000 --idle 20 --rounds 2

Each mode gets a fresh server process on the same embedded MongoDB (its own database), with the
production keep-alive (a ping every 20 s). Memory is the server's VmRSS before and after the
sockets (after a warm-up batch, so first-use allocations are not charged to them); wake-ups are
the event-loop thread's voluntary + nonvoluntary context switches per second over `--idle`
seconds, with no sockets and then with all of them open and subscribed. The clients send no pings
of their own, as browsers do not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

import httpx
from websockets.asyncio.client import connect

from tests.harness import ServerProcess, create_user_cli, start_mongo
from tests.support import PASSWORD, Api

# Every customer holds `sockets / CUSTOMERS` of them: the per-account budgets are raised to let them in.
BUDGETS = {"WS_MAX_SOCKETS_PER_ACCOUNT": "100000", "WS_SUBSCRIBES_BURST": "100000",
           "WS_SUBSCRIBE_READS_BURST": "100000", "HTTP_MAX_CONNECTIONS": "100000"}
MODES = {"adapter": BUDGETS, "off": {**BUDGETS, "ORDERPULSE_UVICORN_ADAPTER": "off"}}
CUSTOMERS = 20
WARMUP = 20


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS (bytes) and context switches of the process's main thread, which runs the event loop."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
            fields[name] = int(value.split()[0]) * (1024 if name == "VmRSS" else 1)
    return fields


async def wakeups_per_second(pid: int, seconds: float) -> float:
    before = proc_status(pid)
    started = time.monotonic()
    await asyncio.sleep(seconds)  # the measured idle window itself
    after = proc_status(pid)
    switches = sum(after[k] - before[k] for k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"))
    return switches / (time.monotonic() - started)


async def open_subscribed(ws_url: str, token: str, order_id: str):
    socket = await connect(ws_url, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None,
                           open_timeout=30, max_size=None)
    await socket.send(json.dumps({"type": "subscribe", "orderIds": [order_id], "id": 1}))
    while json.loads(await socket.recv()).get("type") != "snapshot":
        pass
    return socket


async def measure(mode: str, env: dict[str, str], mongo_url: str, root: Path, sockets: int, idle: float) -> dict:
    database = f"idle_{root.name}_{mode}"
    server = ServerProcess({"MONGODB_URL": mongo_url, "MONGODB_DATABASE": database, **env}, root / mode).start()
    pid = server.process.pid
    opened = []
    try:
        await asyncio.to_thread(create_user_cli, {"MONGODB_URL": mongo_url, "MONGODB_DATABASE": database},
                                role="admin", email="admin@idle.test", password=PASSWORD, name="Ada Admin")
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            api = Api(client)
            store = await api.store(await api.login("admin@idle.test"))
            plan = []
            for _ in range(CUSTOMERS):
                customer = await api.customer()
                plan.append((customer.access_token, (await api.place_order(customer, store))["id"]))
        for token, order_id in plan[:WARMUP]:
            await (await open_subscribed(server.ws_url, token, order_id)).close()
        idle_rate = await wakeups_per_second(pid, idle)
        rss_before = proc_status(pid)["VmRSS"]
        gate = asyncio.Semaphore(64)

        async def one(n: int) -> None:
            token, order_id = plan[n % len(plan)]
            async with gate:
                opened.append(await open_subscribed(server.ws_url, token, order_id))

        await asyncio.gather(*(one(n) for n in range(sockets)))
        await asyncio.sleep(2)  # let the last handshakes' garbage be collected before reading RSS
        rss_after = proc_status(pid)["VmRSS"]
        with_sockets = await wakeups_per_second(pid, idle)
        return {"mode": mode, "sockets": len(opened), "rss_before_mib": rss_before / 2**20,
                "rss_after_mib": rss_after / 2**20, "kib_per_socket": (rss_after - rss_before) / len(opened) / 1024,
                "wakeups_idle_per_s": idle_rate, "wakeups_with_sockets_per_s": with_sockets}
    finally:
        await asyncio.gather(*(s.close() for s in opened), return_exceptions=True)
        server.stop()


async def main(sockets: int, idle: float, rounds: int) -> None:
    with tempfile.TemporaryDirectory(prefix="idle-sockets-") as tmp:
        root = Path(tmp)
        mongo = start_mongo(root / "mongo")
        try:
            # Each round reverses the order, so a drift in the machine's load does not favour one mode.
            order = [mode for n in range(rounds) for mode in (list(MODES) if n % 2 == 0 else list(MODES)[::-1])]
            for n, mode in enumerate(order):
                result = await measure(mode, MODES[mode], mongo.url, root / f"run{n}", sockets, idle)
                print(json.dumps({k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}),
                      flush=True)
        finally:
            mongo.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sockets", type=int, default=2000)
    parser.add_argument("--idle", type=float, default=20.0, help="seconds of each idle window")
    parser.add_argument("--rounds", type=int, default=1, help="runs of both modes, alternating which goes first")
    args = parser.parse_args()
    asyncio.run(main(args.sockets, args.idle, args.rounds))
