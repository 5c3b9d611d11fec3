"""SIGTERM drains a server process: it stops accepting, sends each socket a `reconnect` frame with
its own `retryAfterMs` within WS_DRAIN_SECONDS and closes it with 1012, and ends each event stream
with a `retry:` of its own delay; then it exits within the usual bound."""

from __future__ import annotations

import asyncio
import signal

import httpx
import pytest

from tests.realtime.conftest import Deployment, Watcher, deployment_env
from tests.support import until

pytestmark = pytest.mark.timeout(90)

DRAIN_SECONDS = 3
SOCKETS = 6


async def test_sigterm_tells_sockets_and_streams_when_to_come_back(tmp_path, mongo, redis_server):
    deployment = Deployment(tmp_path, deployment_env(mongo, redis_server, WS_DRAIN_SECONDS=str(DRAIN_SECONDS)),
                            redis_server)
    server = deployment.server()
    try:
        await deployment.start(server)
        admin = await deployment.create_admin(server)
        api = deployment.api(server)
        store = await api.store(admin)
        customer = await api.customer()
        order_id = (await api.place_order(customer, store))["id"]
        watchers = [await Watcher.open(server.ws_url, customer.access_token) for _ in range(SOCKETS)]
        for watcher in watchers:
            await watcher.subscribe(orderIds=[order_id])

        lines: list[str] = []

        async def stream() -> None:
            headers = {"Authorization": f"Bearer {customer.access_token}"}
            async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, \
                    client.stream("GET", f"{server.url}/api/orders/{order_id}/events", headers=headers) as response:
                async for line in response.aiter_lines():
                    lines.append(line)

        reading = asyncio.create_task(stream())
        await until(lambda: any(line.startswith("event: snapshot") for line in lines), 10, message="the snapshot")

        await asyncio.to_thread(server.process.terminate)
        # uvicorn re-raises the SIGTERM it shut down for once done: a graceful stop ends "killed by SIGTERM".
        assert await asyncio.to_thread(server.wait_exit, 10) in (0, -signal.SIGTERM)
        await asyncio.wait_for(reading, 5)  # the stream ended, rather than being cut

        delays = []
        for watcher in watchers:
            assert await watcher.wait_closed(5) == 1012
            reconnect = [frame for frame in watcher.frames if frame.get("type") == "reconnect"]
            assert len(reconnect) == 1 and watcher.frames[-1] == reconnect[0]
            delays.append(reconnect[0]["retryAfterMs"])
        retries = [int(line.removeprefix("retry: ")) for line in lines if line.startswith("retry: ")]
        assert retries[0] == 2000 and len(retries) == 2  # the stream's usual retry, then the drain's
        delays.append(retries[-1])
        # Each its own delay, all within the window: one slot of the window each.
        assert all(0 <= delay <= DRAIN_SECONDS * 1000 for delay in delays)
        assert len(set(delays)) == len(delays)
        assert max(delays) - min(delays) >= DRAIN_SECONDS * 1000 / 2
    finally:
        await deployment.close()
