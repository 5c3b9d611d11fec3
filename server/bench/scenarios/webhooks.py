"""webhooks: partner webhook deliveries to a local receiver, and change → receipt latency beside
the socket push latency of the same changes.

The bench registers a partner client and an endpoint on a receiver it serves itself (answering
`204` at once), places --orders orders through `POST /v1/order`, watches them on one socket, waits
for their creation events, then verifies each order's payment at --rate changes a second. For each
change it times the API call's start to the webhook's arrival and to the socket event's arrival
(the socket event is published before the call answers).
The server must list the receiver's host: run it with WEBHOOK_ALLOWED_HOSTS=127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
from aiohttp import web

from server.bench.api import ApiError
from server.bench.report import ScenarioResult
from server.bench.scenarios import Context
from server.bench.stats import summarize
from server.bench.wsclient import ORDERS_PER_SOCKET, open_socket, subscribe

NAME = "webhooks"
HELP = "webhook deliveries per second to a local receiver; change → receipt p50/p99 beside the socket push"
DEFAULTS = {"orders": 200, "rate": 50.0, "settle": 10.0}


class Receiver:
    """The partner's server: records when each (order, version) arrived."""

    def __init__(self) -> None:
        self.arrived: dict[tuple[str, int], float] = {}
        self.requests = 0
        self.changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _hook(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        self.arrived.setdefault((body["orderId"], body["version"]), time.monotonic())
        self.requests += 1
        self.changed.set()
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        assert isinstance(site._server, asyncio.Server)
        port = site._server.sockets[0].getsockname()[1]  # the port the system chose
        self.url = f"http://127.0.0.1:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def _until(check: Callable[[], bool], seconds: float, event: asyncio.Event) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        event.clear()
        try:
            await asyncio.wait_for(event.wait(), min(left, 0.5))
        except TimeoutError:
            pass
    return True


async def run(ctx: Context) -> ScenarioResult:
    count = min(int(ctx.option("orders")), ORDERS_PER_SOCKET)
    rate = float(ctx.option("rate"))
    settle = float(ctx.option("settle"))
    target = ctx.targets[0]
    result = ScenarioResult(NAME, {"url": target.base_url, "orders": count, "rate": rate}, at_target_size=False)
    receiver = Receiver()
    await receiver.start()
    socket = None
    try:
        admin = ctx.population.admin.access_token
        client = await ctx.api.call("POST", "/api/admin/clients", token=admin,
                                    body={"name": f"bench {ctx.population.run_id}"})
        await ctx.api.call("POST", "/api/admin/webhooks", token=admin,
                           body={"clientId": client["clientId"], "url": receiver.url})
        store = await ctx.population.new_store(NAME)
        owner = ctx.population.customers[0]
        headers = {"x-client-id": client["clientId"], "authorization": f"Bearer {owner.access_token}"}
        ids: list[str] = []
        for index in range(count):
            ctx.progress.update(f"placing partner orders {index + 1}/{count}")
            checkout = await ctx.api.checkout(owner.access_token, store.id, store.menu_item_id)
            response = await ctx.api.http.post("/v1/order", headers=headers,
                                               content=orjson.dumps({"checkoutToken": checkout["checkoutToken"]}))
            response.raise_for_status()
            ids.append(response.json()["orderId"])
        if not await _until(lambda: all((i, 1) in receiver.arrived for i in ids), 60, receiver.changed):
            result.notes.append("not every creation event arrived within 60 s")

        pushed: dict[tuple[str, int], float] = {}
        socket = await open_socket(target.ws_url, owner.access_token)
        await subscribe(socket, order_ids=ids)

        async def read_socket() -> None:
            async for raw in socket:
                message = orjson.loads(raw)
                order = message.get("order") or {}
                if message.get("type") == "order" and order.get("id"):
                    pushed.setdefault((order["id"], order.get("version", 0)), time.monotonic())

        reader = asyncio.create_task(read_socket())
        returned: dict[tuple[str, int], float] = {}
        refused = 0
        began = time.monotonic()
        for index, order_id in enumerate(ids):
            await asyncio.sleep(max(0.0, began + index / rate - time.monotonic()))
            ctx.progress.update(f"changes {index + 1}/{count}")
            sent = time.monotonic()  # from the call: the socket event comes before its answer
            try:
                await ctx.api.set_payment(store.staff_token, order_id)
            except ApiError:
                refused += 1  # an unpaid timeout shorter than the setup cancelled it first
                continue
            returned[order_id, 2] = sent
        await _until(lambda: all(key in receiver.arrived for key in returned), settle, receiver.changed)
        await asyncio.sleep(min(1.0, settle))  # the socket's last events
        reader.cancel()

        hooks = [receiver.arrived[key] - at for key, at in returned.items() if key in receiver.arrived]
        pushes = [pushed[key] - at for key, at in returned.items() if key in pushed]
        last = max((receiver.arrived[key] for key in returned if key in receiver.arrived), default=began)
        result.add("changes", "changes made", len(returned))
        result.add("change_errors", "changes refused", refused)
        result.add("webhooks_received", "webhook deliveries received", len(hooks))
        result.add("webhook_rate", "webhook deliveries per second (changes at --rate)",
                   len(hooks) / (last - began) if last > began else None, "/s")
        result.add_distribution("webhook", "change → webhook receipt", summarize(hooks))
        result.add_distribution("socket", "change → socket event", summarize(pushes))
        result.add("requests", "requests at the receiver (retries included)", receiver.requests)
        return result
    finally:
        if socket is not None:
            await socket.close()
        await receiver.stop()
