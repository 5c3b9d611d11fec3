"""Server memory per idle WebSocket: one authenticated socket subscribed to one order, with the
production keep-alive, budgets and limits (README, "The uvicorn adapter").

RSS is the server process's `VmRSS`, before and with the sockets; the test compares it with itself.
"""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import ClientConnection, connect

from tests.realtime.conftest import deployment_env, metric, metrics_of, one_server, rss_kib
from tests.support import until

SOCKETS = 500
WARM_SOCKETS = 50
# Issue 22's goal. Measured at 9.2 KiB here (500 sockets) and 9.99 KiB with the benchmark's 10,000
# (its token in the query string), 13.0-13.1 KiB there before the connection's coroutines between
# uvicorn and the read and the request's query string were let go of, and 23-24 KiB before the
# receive queue, the handshake's headers, the session's frames and its expiry timer were.
MAX_KIB_PER_SOCKET = 12


async def open_subscribed(url: str, token: str, order_id: str) -> ClientConnection:
    """A socket as a phone on its order page holds it: no pings of its own, nothing read after the snapshot."""
    socket = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, ping_interval=None,
                           open_timeout=30)
    await socket.send(json.dumps({"type": "subscribe", "orderIds": [order_id], "id": 1}))
    while json.loads(await socket.recv()).get("type") != "snapshot":
        pass
    return socket


async def test_an_idle_subscribed_socket_costs_the_server_less_than_12_kib(mongo, tmp_path):
    # One customer holds every socket (budgets raised only so that one account can open them all).
    env = deployment_env(mongo, None, WS_MAX_SOCKETS_PER_ACCOUNT=str(SOCKETS + WARM_SOCKETS),
                         WS_SUBSCRIBES_BURST=str(2 * (SOCKETS + WARM_SOCKETS)))
    async with one_server(tmp_path, env, None) as (deployment, server, api, admin):
        customer = await api.customer()
        order = await api.place_order(customer, await api.store(admin))
        pid = server.process.pid
        gate = asyncio.Semaphore(32)

        async def one() -> ClientConnection:
            async with gate:
                return await open_subscribed(server.ws_url, customer.access_token, order["id"])

        async def sockets_open(count: int) -> bool:
            return metric(await metrics_of(server), "orderpulse_sockets_open") == count

        # First-use allocations (code paths, the hub's tables, the allocator's pools) are not the sockets'.
        warm = await asyncio.gather(*(one() for _ in range(WARM_SOCKETS)))
        await asyncio.gather(*(socket.close() for socket in warm))
        await until(lambda: sockets_open(0), 20, interval=0.25, message="the warm-up sockets to close")
        baseline = rss_kib(pid)

        sockets = await asyncio.gather(*(one() for _ in range(SOCKETS)))
        try:
            await until(lambda: sockets_open(SOCKETS), 20, interval=0.25, message="every socket to be open")
            per_socket = (rss_kib(pid) - baseline) / SOCKETS
            print(f"\nRSS {baseline} KiB, with {SOCKETS} idle sockets {rss_kib(pid)} KiB: {per_socket:.1f} KiB each")
            assert per_socket < MAX_KIB_PER_SOCKET
        finally:
            await asyncio.gather(*(socket.close() for socket in sockets))
