"""Memory of sockets that watch many orders: what one costs, and that it goes back when they close.

RSS is the server process's `VmRSS`; the test compares it with itself before, during and after.
"""

from __future__ import annotations

import asyncio
import json

from tests.realtime.conftest import Watcher, copy_orders, deployment_env, metric, metrics_of, one_server, rss_kib
from tests.support import until

ORDERS = 1000
SOCKETS = 50
WARM_SOCKETS = 6  # enough released entries (12,000) for the server to give memory back once


async def watch_all(url: str, token: str, order_ids: list[str]) -> Watcher:
    watcher = await Watcher.open(url, token)
    for start in range(0, len(order_ids), 100):
        answer = await watcher.subscribe(orderIds=order_ids[start:start + 100], timeout=30)
        assert answer["type"] == "snapshot", answer
    return watcher


async def test_sockets_watching_1000_orders_each_cost_less_than_their_snapshots_and_give_the_memory_back(
        mongo, redis_server, tmp_path):
    # One kitchen account's displays, each watching the store's 1,000 orders by id (this measures
    # memory, so the account's budgets are raised to let all of them in at once).
    env = deployment_env(mongo, redis_server, WS_MAX_SOCKETS_PER_STAFF_ACCOUNT=str(SOCKETS + 1),
                         WS_SUBSCRIBES_BURST=str((2 * SOCKETS + WARM_SOCKETS) * ORDERS // 100))
    async with one_server(tmp_path, env, redis_server) as (deployment, server, api, admin):
        store = await api.store(admin)
        first = await api.place_order(await api.customer(), store)
        order_ids = [first["id"], *await asyncio.to_thread(copy_orders, env, first["id"], ORDERS - 1)]
        pid = server.process.pid
        token = store.staff.access_token

        async def closed_and_trimmed(trims: int) -> bool:
            text = await metrics_of(server)
            return (metric(text, "orderpulse_sockets_open") == 0
                    and metric(text, "orderpulse_subscriptions", '{kind="order"}') == 0
                    and metric(text, "orderpulse_memory_trims_total") >= trims)

        # The baseline is taken after a smaller round of the same came and went: the code it runs
        # is loaded (and, under coverage, its lines recorded) and memory was given back once.
        warm = [await watch_all(server.ws_url, token, order_ids) for _ in range(WARM_SOCKETS)]
        entry_bytes = len(json.dumps(warm[0].snapshots[0]["orders"][0]))
        for watcher in warm:
            await watcher.close()
        await until(lambda: closed_and_trimmed(1), 20, interval=0.25, message="the warm-up to be given back")
        baseline = rss_kib(pid)

        # Two rounds: memory given back and, what the allocator keeps of it, used again (no growth).
        afters = []
        for heavy_round in range(2):
            watchers = [await watch_all(server.ws_url, token, order_ids) for _ in range(SOCKETS)]
            during = rss_kib(pid)
            for watcher in watchers:
                await watcher.close()
            await until(lambda: closed_and_trimmed(2 + heavy_round), 20, interval=0.25,
                        message="the sockets' memory to be given back")
            afters.append(rss_kib(pid))

        per_order = (during - baseline) * 1024 / SOCKETS / ORDERS
        print(f"\nRSS baseline {baseline} KiB, {SOCKETS} sockets x {ORDERS} orders {during} KiB "
              f"({per_order:.0f} B per watched order and socket; one snapshot entry is {entry_bytes} B), "
              f"after closing them {afters[0]} KiB, after a second round {afters[1]} KiB")
        assert afters[-1] / baseline < 1.08
        assert afters[1] / afters[0] < 1.03  # a leak of a round would be some 8 %
        assert per_order < entry_bytes / 2  # a socket keeps ids and versions, never a copy of a snapshot
