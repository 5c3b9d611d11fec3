"""Driving orders past their deadlines on a manual clock, and waiting for the enforcer's pass."""

from __future__ import annotations

from server.models import Order
from tests.clock import ManualClock
from tests.support import until


async def cancelled_by_enforcer(api, actor, order_id: str) -> dict:
    """Wait for the background enforcer to cancel the order; then its API view. The wait reads the
    database, not the API: a read enforces the order's own due deadline, which would hide the enforcer."""

    async def cancelled() -> bool:
        stored = await Order.get(order_id)
        return stored is not None and stored.order_status == "cancelled"

    await until(cancelled, message=f"the enforcer to cancel order {order_id}")
    return (await api.get(f"/api/orders/{order_id}", actor)).json()["data"]


async def no_show(api, store, customer, clock: ManualClock) -> dict:
    """One no-show: an order taken to ready and left there until the ready timeout passes."""
    order = await api.place_order(customer, store)
    if order["commitmentDeadlineAt"]:
        await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    clock.advance(api.runtime.settings.ready_timeout.total_seconds())
    return await cancelled_by_enforcer(api, customer, order["id"])


async def make_watch_tier(api, store, customer, clock: ManualClock) -> None:
    for _ in range(2):
        await no_show(api, store, customer, clock)
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert profile["trustTier"] == "watch", profile
