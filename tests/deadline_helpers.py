"""Waiting on deadline outcomes: poll the API until the event has happened, with a limit."""

from __future__ import annotations

import asyncio
import time


async def wait_for_status(api, actor, order_id: str, status: str, timeout: float = 15) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = (await api.get(f"/api/orders/{order_id}", actor)).json()["data"]
        if data["orderStatus"] == status:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {data['orderStatus']}, not {status}, after {timeout} s")
        await asyncio.sleep(0.05)


async def no_show(api, store, customer) -> dict:
    """One no-show: an order taken to ready and left there until the ready timeout passes."""
    order = await api.place_order(customer, store)
    if order["commitmentDeadlineAt"]:
        await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    return await wait_for_status(api, customer, order["id"], "cancelled")


async def make_watch_tier(api, store, customer) -> None:
    for _ in range(2):
        await no_show(api, store, customer)
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert profile["trustTier"] == "watch", profile
