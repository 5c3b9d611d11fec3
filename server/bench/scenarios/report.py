"""report: how long the store's day in numbers takes for a store with 50,000 orders.

Placing 50,000 orders through the API would take the better part of an hour, and what is measured
is the report's read, not the checkout: so the scenario makes its store through the API, then
writes the orders straight into the server's MongoDB (MONGODB_URL and MONGODB_DATABASE, the
server's own variables, must name it), as a real store's history would look: `--orders` orders
over days of lunches (500 a day, 11:00 to 15:00 in the server's zone), most picked up, some
cancelled for each reason or left as no-shows, one to three items each. Then it asks the API for
the report of the last day (JSON, then CSV) again and again and times each answer.
"""

from __future__ import annotations

import os
import random
import secrets
import statistics
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from server.bench.report import ScenarioResult
from server.bench.scenarios import Context

NAME = "report"
HELP = "the store's day report (GET /api/stores/{id}/report) for a store with 50,000 orders"
DEFAULTS = {"orders": 50_000, "seed": 1}
TARGET_ORDERS = 50_000
TARGET_MS = 1000.0
PER_DAY = 500
ROUNDS = 20
ZONE = ZoneInfo(os.environ.get("TIMEZONE", "Asia/Kolkata"))
MENU = [("Masala Dosa", 6000), ("Idli Vada", 4500), ("Paneer Burger", 12000), ("Veg Thali", 9000),
        ("Cold Coffee", 4950), ("Lemon Soda", 3000), ("French Fries", 8000), ("Chole Bhature", 7000)]
ENDINGS = [("picked_up", None)] * 17 + [("cancelled", "no_show_timeout"), ("cancelled", "store_cancelled"),
                                        ("cancelled", "customer_cancelled")]


def orders_for(store_id: str, store_name: str, count: int, seed: int, last_day: datetime) -> list[dict[str, Any]]:
    """`count` order documents of one store, `PER_DAY` a day, ending on `last_day`."""
    rng = random.Random(seed)
    run = secrets.token_hex(4)
    days = max(1, -(-count // PER_DAY))
    docs = []
    for i in range(count):
        day = last_day - timedelta(days=days - 1 - i // PER_DAY)
        created = (day + timedelta(minutes=rng.uniform(0, 240))).astimezone(timezone.utc)
        lines = rng.sample(MENU, rng.randint(1, 3))
        items: list[dict[str, Any]] = [{"menu_item_id": f"{n:024x}", "name": name, "price_paise": price, "quantity": (q := rng.randint(1, 2)),
                  "total_paise": price * q} for n, (name, price) in enumerate(lines)]
        status, reason = rng.choice(ENDINGS)
        accepted = created + timedelta(seconds=rng.uniform(20, 120))
        doc = {"order_number": f"BENCH-{run}-{i:06d}", "user_id": f"{i % 400:024x}", "store_id": store_id,
               "store_name": store_name, "store_location": "Bench lab", "customer_first_name": "Bench",
               "items": items, "total_paise": sum(item["total_paise"] for item in items),
               "payment_reference": f"CBPAY{secrets.token_hex(5).upper()}", "payment_method": "direct_store_upi",
               "checkout_id": f"bench-{run}-{i}", "payment_status": "success", "order_status": status,
               "requires_commitment": False, "is_commitment_confirmed": False, "otp_failed_attempts": 0,
               "is_otp_verified": status == "picked_up", "version": 5, "created_at": created, "updated_at": created,
               "paid_at": accepted, "accepted_at": accepted, "slot_deferred": rng.random() < 0.05}
        if reason != "customer_cancelled" and reason != "store_cancelled":
            ready = accepted + timedelta(minutes=rng.lognormvariate(1.8, 0.5))
            doc.update(preparing_at=accepted, ready_at=ready, ready_expires_at=ready + timedelta(minutes=20))
            if status == "picked_up":
                doc["picked_up_at"] = ready + timedelta(minutes=rng.uniform(1, 10))
        if reason:
            doc.update(cancelled_at=accepted + timedelta(minutes=25), cancellation_reason=reason)
            if reason == "no_show_timeout":
                doc["no_show_at"] = doc["cancelled_at"]
        docs.append(doc)
    return docs


async def seed(url: str, database: str, docs: list[dict[str, Any]], ctx: Context) -> float:
    from pymongo import AsyncMongoClient

    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(url, tz_aware=True)
    try:
        orders = client[database]["orders"]
        began = time.perf_counter()
        for start in range(0, len(docs), 1000):
            await orders.insert_many(docs[start:start + 1000], ordered=False)
            ctx.progress.update(f"seeded {min(start + 1000, len(docs)):,}/{len(docs):,} orders")
        return time.perf_counter() - began
    finally:
        await client.close()


async def timed(ctx: Context, path: str, token: str) -> tuple[list[float], int]:
    samples = []
    size = 0
    for _ in range(ROUNDS):
        began = time.perf_counter()
        response = await ctx.api.http.get(path, headers={"authorization": f"Bearer {token}"})
        samples.append((time.perf_counter() - began) * 1000)
        response.raise_for_status()
        size = len(response.content)
    return samples, size


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {"count": len(values), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": ordered[-1],
            "mean": statistics.fmean(values)}


async def run(ctx: Context) -> ScenarioResult:
    count, rng_seed = int(ctx.option("orders")), int(ctx.option("seed"))
    url = os.environ.get("MONGODB_URL")
    database = os.environ.get("MONGODB_DATABASE", "orderpulse")
    result = ScenarioResult(NAME, {"orders": count, "perDay": PER_DAY, "rounds": ROUNDS, "database": database},
                            at_target_size=count >= TARGET_ORDERS)
    if not url:  # `all` goes on without it: the other scenarios need no database access
        result.at_target_size = False
        result.add("skipped", "not run", "set MONGODB_URL and MONGODB_DATABASE to the server's database")
        result.notes.append("The report scenario writes its orders into the server's database: set MONGODB_URL "
                            "(and MONGODB_DATABASE) to it.")
        return result
    store = await ctx.population.new_store("report")
    today = datetime.now(ZONE).replace(hour=11, minute=0, second=0, microsecond=0)
    last_day = today - timedelta(days=1)
    docs = orders_for(store.id, f"Bench {store.id}", count, rng_seed, last_day)
    ctx.progress.note(f"seeding {count:,} orders into {database}")
    seconds = await seed(url, database, docs, ctx)
    result.add("seed_s", "seeding the orders", seconds, "s")
    day = last_day.date().isoformat()
    path = f"/api/stores/{store.id}/report?date={day}"
    json_ms, size = await timed(ctx, path, store.staff_token)
    csv_ms, _ = await timed(ctx, f"{path}&format=csv", store.staff_token)
    result.add("day_orders", "orders of the day reported", float(min(PER_DAY, count)))
    result.add("report_bytes", "size of the JSON answer", float(size), "B")
    result.add_distribution("report_json", "report (JSON)", _summary(json_ms), {"p90": TARGET_MS})
    result.add_distribution("report_csv", "report (CSV)", _summary(csv_ms), {"p90": TARGET_MS})
    result.add("report_first_ms", "report (JSON), first request", json_ms[0], "ms")
    return result
