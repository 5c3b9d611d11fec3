"""The pickup-code lockout holds under concurrency: attempts are counted before any code is compared."""

from __future__ import annotations

import asyncio


async def _ready_order(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    return store, order["id"], await api.otp_of(customer, order["id"])


async def test_200_concurrent_wrong_codes_on_two_processes_evaluate_only_the_attempt_limit(api_factory, clock):
    first = await api_factory(clock=clock)
    second = await api_factory(clock=clock)  # the same database: another process's view
    store, order_id, otp = await _ready_order(first)
    wrong = "000000" if otp != "000000" else "111111"
    path = f"/api/orders/{order_id}/verify-otp"
    answers = await asyncio.gather(*(
        (first if n % 2 else second).post(path, store.staff, json={"otp": wrong}) for n in range(200)))
    statuses = [answer.status_code for answer in answers]
    limit = first.runtime.settings.otp_max_attempts
    assert (statuses.count(400), statuses.count(429)) == (limit, 200 - limit)
    locked = [answer for answer in answers if answer.status_code == 429]
    assert all(int(answer.headers["retry-after"]) >= 1 for answer in locked)
    assert locked[0].json()["message"].startswith("Too many wrong codes.")

    # The right code is refused while the lock lasts, then accepted once it ends.
    assert (await second.post(path, store.staff, json={"otp": otp})).status_code == 429
    clock.advance(first.runtime.settings.otp_lockout_seconds)
    assert (await second.post(path, store.staff, json={"otp": otp})).status_code == 200


async def test_a_new_window_after_the_lock_again_evaluates_only_the_limit(api_factory, clock):
    api = await api_factory(clock=clock)
    store, order_id, otp = await _ready_order(api)
    limit = api.runtime.settings.otp_max_attempts
    wrong = "000000" if otp != "000000" else "111111"
    path = f"/api/orders/{order_id}/verify-otp"
    first = [r.status_code for r in await asyncio.gather(*(
        api.post(path, store.staff, json={"otp": wrong}) for _ in range(40)))]
    assert first.count(400) == limit
    clock.advance(api.runtime.settings.otp_lockout_seconds)
    again = [r.status_code for r in await asyncio.gather(*(
        api.post(path, store.staff, json={"otp": wrong}) for _ in range(40)))]
    assert (again.count(400), again.count(429)) == (limit, 40 - limit)
