"""`orderpulse demo --simulate`: the lunch-rush pacing, compressed on the injected clock, and the
simulated customers (orders through the real services; some never come to the counter)."""

from __future__ import annotations

import asyncio
import math
import os
import random
import subprocess
import sys
import uuid

import httpx

from server.domain.access import Principal, Role
from server.embedded_mongo import free_loopback_port
from server.models import Order
from server.services import catalog
from server.services.simulation import LunchRush, RushProfile, Simulation
from tests.harness import REPO, TEST_JWT_SECRET, drop_database, lines_until_serving
from tests.support import until, until_sync


def arrivals_per_window(days: int, seed: int = 3) -> dict[str, int]:
    rush = LunchRush(RushProfile(), random.Random(seed))
    counts = {"11:00-11:30": 0, "12:15-12:45": 0, "total": 0}
    day_hours = 0.0
    while day_hours < days * 4:
        day_hours += rush.next_arrival()
        counts["total"] += 1
        if 11.0 <= rush.hour < 11.5:
            counts["11:00-11:30"] += 1
        elif 12.25 <= rush.hour < 12.75:
            counts["12:15-12:45"] += 1
    return counts


def test_orders_come_in_bursts_around_the_lunch_peak():
    profile = RushProfile()
    counts = arrivals_per_window(days=40)
    # The peak half hour gets several times the orders of the quiet opening half hour.
    assert counts["12:15-12:45"] > 4 * counts["11:00-11:30"], counts
    # A day brings as many orders as the profile's rate adds up to (within 10 %).
    expected_per_day = profile.base_per_hour * 4 + sum(
        peak.extra_per_hour * peak.spread_hours * math.sqrt(2 * math.pi) for peak in profile.peaks)
    assert abs(counts["total"] / 40 - expected_per_day) < 0.1 * expected_per_day, counts


async def simulation_of(api, clock, **options):
    store = await api.store()
    customers = []
    for name in ("Sim Asha", "Sim Ravi"):
        actor = await api.customer(name)
        customers.append(Principal(actor.id, Role(actor.user["role"]), None, name, expires_at=math.inf))
    store_record = await catalog.find_store(store.id)

    async def menu() -> list[str]:
        return [str(item.id) for item in await catalog.menu_of(store_record, include_unavailable=False)]

    said: list[str] = []
    runtime = api.runtime
    simulation = Simulation(store.id, customers, runtime.checkout, runtime.lifecycle, runtime.orders, menu, clock,
                            say=said.append, **options)
    return simulation, store, said


async def test_each_order_waits_its_compressed_gap_on_the_clock(api_factory, clock):
    api = await api_factory(clock=clock)
    speed = 120.0
    simulation, store, _ = await simulation_of(api, clock, speed=speed, counter_check_seconds=10_000, seed=5)
    twin = LunchRush(RushProfile(), random.Random(5), simulation.start_hour)
    gaps = [twin.next_arrival() * 3600 / speed for _ in range(3)]
    stop = asyncio.Event()
    task = asyncio.create_task(simulation.run(stop))
    try:
        for placed, gap in enumerate(gaps):
            await until(lambda: clock.sleeping(gap) == 1, message=f"the simulation asleep for {gap:.3f} s")
            clock.advance(gap - 0.01)  # a hundredth short of the gap: nobody orders yet
            assert len(simulation.placed) == placed
            clock.advance(0.02)  # past it (the clock moves in whole milliseconds)
            await until(lambda: len(simulation.placed) == placed + 1, message=f"order {placed + 1}")
    finally:
        stop.set()
        await task
    orders = await Order.find({"store_id": store.id}).to_list()
    assert sorted(str(order.id) for order in orders) == sorted(simulation.placed)


async def test_customers_who_come_read_out_their_pickup_code_and_the_others_never_come(api_factory, clock):
    api = await api_factory(clock=clock)
    comes, store, said = await simulation_of(api, clock, no_show_rate=0.0)
    order_id = await comes.place_one()
    await api.advance(store, order_id, "paid", "processing", "ready")
    await comes.announce_arrivals()
    stored = await api.runtime.orders.find(order_id)
    name = next(customer.name for customer in comes.customers if customer.user_id == stored.user_id)
    assert said == [f"At the counter: {name} for order {stored.order_number}, "
                    f"pickup code {api.runtime.orders.pickup_otp(stored)}"]
    await comes.announce_arrivals()
    assert len(said) == 1  # announced once

    never, store, said = await simulation_of(api, clock, no_show_rate=1.0)
    order_id = await never.place_one()
    await api.advance(store, order_id, "paid", "processing", "ready")
    await never.announce_arrivals()
    assert said == []
    clock.advance(api.runtime.settings.ready_timeout.total_seconds())

    async def cancelled_as_no_show() -> bool:
        # Read from the database: the staff's token has expired on the moved clock.
        stored = await Order.get(order_id)
        return stored is not None and stored.cancellation_reason == "no_show_timeout"
    await until(cancelled_as_no_show, message="the no-show timeout")


async def test_a_closed_store_is_skipped_like_a_customer_giving_up(api_factory, clock):
    api = await api_factory(clock=clock)
    simulation, store, _ = await simulation_of(api, clock, counter_check_seconds=10_000, seed=5)
    admin = await api.admin()
    await api.patch(f"/api/stores/{store.id}", admin, json={"isActive": False})
    twin = LunchRush(RushProfile(), random.Random(5), simulation.start_hour)
    first, second = (twin.next_arrival() * 3600 / simulation.speed for _ in range(2))
    stop = asyncio.Event()
    task = asyncio.create_task(simulation.run(stop))
    try:
        await until(lambda: clock.sleeping(first) == 1, message="the first wait")
        clock.advance(first + 0.01)
        # The refused order is skipped, and the simulation waits for the next customer.
        await until(lambda: clock.sleeping(second) == 1, message="the wait for the second customer")
    finally:
        stop.set()
        await task
    assert simulation.placed == []


def test_demo_with_simulate_serves_while_its_customers_order(mongo, tmp_path):
    """The command line end to end, in real time on purpose (at --speed 3600 an order comes about
    every second around noon)."""
    database = f"t_{uuid.uuid4().hex[:12]}"
    port = free_loopback_port()
    env = {**os.environ, "JWT_SECRET": TEST_JWT_SECRET, "DATA_DIR": str(tmp_path), "PORT": str(port),
           "HOST": "127.0.0.1", "MONGODB_URL": mongo.url, "MONGODB_DATABASE": database, "LOG_LEVEL": "warning"}
    process = subprocess.Popen([sys.executable, "-m", "server", "demo", "--simulate", "--speed", "3600"], cwd=REPO,
                               env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        seen = lines_until_serving(process)
        assert any(line.startswith("Simulating customers of Campus Cafe") for line in seen), "".join(seen)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as client:
            token = client.post("/api/auth/login", json={"email": "staff@orderpulse.demo",
                                                         "password": "staff-demo-1"}).json()["data"]["accessToken"]

            def orders() -> int:
                data = client.get("/api/orders", headers={"Authorization": f"Bearer {token}"}).json()["data"]
                return len(data["orders"] if isinstance(data, dict) else data)
            until_sync(orders, timeout=30, message="a simulated order")
    finally:
        process.terminate()
        process.wait(15)
        drop_database(mongo.url, database)
