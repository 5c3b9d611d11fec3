"""The full order carries the time of every step the tracking page shows, so a reload can show
them; seed 000's poll-status body stays its 13 fields."""

from __future__ import annotations

from datetime import datetime

from server.views import LEAN_FIELDS


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_the_full_order_records_when_it_was_accepted_and_when_preparation_started(api_factory, clock):
    api = await api_factory(clock=clock)
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    steps = []
    for step in ("paid", "processing", "ready"):
        clock.advance(30)
        await api.advance(store, order["id"], step)
        steps.append(clock.now())

    detail = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert at(detail["paidAt"]) == at(detail["acceptedAt"]) == steps[0]
    assert at(detail["preparingAt"]) == steps[1]
    assert at(detail["readyAt"]) == steps[2]

    poll = await api.get(f"/api/orders/{order['id']}/poll-status", customer)
    assert tuple(poll.json()["data"]) == LEAN_FIELDS and len(LEAN_FIELDS) == 13


async def test_an_order_not_yet_accepted_has_no_step_times(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    detail = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert (detail["acceptedAt"], detail["preparingAt"], detail["readyAt"]) == (None, None, None)
