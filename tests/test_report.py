"""The store's day in numbers (issue 27): a day made through the API on the test's clock, and the
report of it checked against numbers the test works out itself from the orders' own timestamps
and the ready times the product showed; the day's edges, CSV, bad dates and who may ask."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections import Counter
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from server.domain.clock import parse_iso
from tests.clock import ManualClock
from tests.deadline_helpers import cancelled_by_enforcer
from tests.support import Api

IST = ZoneInfo("Asia/Kolkata")
DAY = "2026-12-05"


def at_ist(hour: int, minute: int, day: int = 5) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=IST).astimezone(timezone.utc)


class Day:
    """Moves the clock to a moment of the day and keeps the orders made on it."""

    def __init__(self, api: Api, clock: ManualClock, store, customer) -> None:
        self.api, self.clock, self.store, self.customer = api, clock, store, customer
        self.orders: list[dict] = []
        self.shown: dict[str, datetime] = {}  # the estimate the customer saw on acceptance

    def to(self, moment: datetime) -> None:
        assert moment >= self.clock.now()
        self.clock.advance((moment - self.clock.now()).total_seconds())

    async def place(self, lines) -> dict:
        order = await self.api.place_order(self.customer, self.store, lines)
        self.orders.append(order)
        return order

    async def accept(self, order) -> None:
        await self.api.advance(self.store, order["id"], "paid")
        seen = (await self.api.get(f"/api/orders/{order['id']}", self.customer)).json()["data"]
        self.shown[order["id"]] = parse_iso(seen["estimatedReadyAt"])

    async def ready_after(self, order, minutes: float) -> None:
        self.clock.advance(minutes * 60)
        await self.api.advance(self.store, order["id"], "processing", "ready")

    async def pick_up(self, order) -> None:
        code = await self.api.otp_of(self.customer, order["id"])
        response = await self.api.post(f"/api/orders/{order['id']}/verify-otp", self.store.staff, json={"otp": code})
        assert response.status_code == 200, response.text


@pytest.fixture
async def seeded(api_factory):
    """A lunch and an afternoon at one store, with an order on each neighbouring day."""
    clock = ManualClock(at_ist(23, 50, day=4))
    api = await api_factory(clock=clock, access_token_minutes=3 * 24 * 60, ready_no_show_timeout_minutes=20)
    store = await api.store(menu=[("Masala Dosa", 60), ("Cold Coffee", 49.5), ("=Cmd Tea", 20)])
    customer = await api.customer()
    day = Day(api, clock, store, customer)
    await api.place_order(customer, store)  # the day before (unpaid, cancelled by its deadline)
    day.to(at_ist(12, 0))
    lunch = [await day.place([(0, 2)]), await day.place([(0, 1), (1, 1)]), await day.place([(1, 3)])]
    for order in lunch:
        await day.accept(order)
    await day.ready_after(lunch[0], 6)       # 6 min
    await day.pick_up(lunch[0])
    await day.ready_after(lunch[1], 9)       # 15 min after acceptance
    await day.pick_up(lunch[1])
    await day.ready_after(lunch[2], 12.5)    # 27.5 min: later than any estimate shown
    day.to(at_ist(12, 50))
    no_show = await cancelled_by_enforcer(api, customer, lunch[2]["id"])
    assert no_show["cancellationReason"] == "no_show_timeout"

    cancelled = await day.place([(2, 1)])
    response = await api.patch(f"/api/orders/{cancelled['id']}/status", store.staff,
                               json={"status": "cancelled", "reason": "Out of tea"})
    assert response.status_code == 200, response.text
    withdrawn = await day.place([(0, 1)])
    assert (await api.post(f"/api/orders/{withdrawn['id']}/cancel", customer)).status_code == 200

    day.to(at_ist(15, 10))
    afternoon = [await day.place([(2, 4)]), await day.place([(0, 1)])]
    for order in afternoon:
        await day.accept(order)
    await day.ready_after(afternoon[0], 4)
    await day.pick_up(afternoon[0])
    await day.ready_after(afternoon[1], 3)
    still_cooking = await day.place([(1, 1)])
    await day.accept(still_cooking)

    day.to(at_ist(0, 1, day=6))
    await api.place_order(customer, store)  # the day after
    return api, store, customer, day




def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


async def test_the_report_of_a_seeded_day_matches_numbers_worked_out_independently(seeded):
    api, store, customer, day = seeded
    orders = [(await api.get(f"/api/orders/{o['id']}", customer)).json()["data"] for o in day.orders]
    response = await api.get(f"/api/stores/{store.id}/report?date={DAY}", store.staff)
    assert response.status_code == 200, response.text
    report = response.json()["data"]

    assert report["orders"] == len(orders) == 8
    assert report["byStatus"] == dict(sorted(Counter(o["orderStatus"] for o in orders).items()))
    assert report["revenue"] == sum(o["totalAmount"] for o in orders if o["orderStatus"] == "picked_up")
    spans: dict[int, list[float]] = {}
    late = 0
    for o in orders:
        if o["acceptedAt"] and o["readyAt"]:
            accepted, ready = parse_iso(o["acceptedAt"]), parse_iso(o["readyAt"])
            spans.setdefault(accepted.astimezone(IST).hour, []).append((ready - accepted).total_seconds() / 60)
            late += ready > day.shown[o["id"]] + timedelta(minutes=1)
    assert [h["hour"] for h in report["hours"]] == sorted(spans) == [12, 15]
    for hour in report["hours"]:
        values = spans[hour["hour"]]
        assert hour["count"] == len(values)
        assert hour["averageMinutes"] == pytest.approx(statistics.fmean(values), abs=0.01)
        assert hour["p90Minutes"] == pytest.approx(p90(values), abs=0.01)
    everything = [v for values in spans.values() for v in values]
    assert report["prepTime"]["averageMinutes"] == pytest.approx(statistics.fmean(everything), abs=0.01)
    assert report["late"] == {"count": late, "of": len(everything), "graceMinutes": 1.0}
    assert late >= 1  # the 27.5-minute order
    reasons = Counter(o["cancellationReason"] for o in orders if o["orderStatus"] == "cancelled")
    # The lunch order left at the counter, and the afternoon's last one (the night passed since).
    assert report["noShows"] == reasons["no_show_timeout"] + reasons["commitment_timeout"] == 2
    assert report["cancellations"] == {"total": 4, "byReason": dict(sorted(reasons.items()))}
    assert set(reasons) == {"no_show_timeout", "store_cancelled", "customer_cancelled"}
    quantities: Counter[str] = Counter()
    for o in orders:
        if o["orderStatus"] != "cancelled":
            for item in o["items"]:
                quantities[item["name"]] += item["quantity"]
    assert [(i["name"], i["quantity"]) for i in report["topItems"]] == \
        sorted(quantities.items(), key=lambda kv: (-kv[1], kv[0]))
    assert report["capHit"] == 0

    # The CSV says the same, one number a row, and a name that looks like a formula stays text.
    response = await api.get(f"/api/stores/{store.id}/report?date={DAY}&format=csv", store.staff)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    cells = {(r["section"], r["name"], r["measure"]): r["value"] for r in rows}
    assert cells[("day", DAY, "orders")] == "8"
    assert cells[("day", DAY, "late")] == str(late)
    assert cells[("cancellation", "store_cancelled", "orders")] == "1"
    assert cells[("item", "'=Cmd Tea", "quantity")] == str(quantities["=Cmd Tea"])
    chart = await api.get(f"/api/stores/{store.id}/report?date={DAY}&format=svg", store.staff)
    assert chart.headers["content-type"].startswith("image/svg+xml") and "<script" not in chart.text

    # The neighbouring days hold one order each.
    for other in ("2026-12-04", "2026-12-06"):
        assert (await api.get(f"/api/stores/{store.id}/report?date={other}", store.staff)).json()["data"]["orders"] == 1


@pytest.mark.parametrize("query", ["date=2026-13-01", "date=2026-02-30", "date=20261205", "date=yesterday",
                                   "date=", "date=2026-12-05T00:00", "date=%EF%BC%92026-12-05", "date=0001-01-01",
                                   "date=9999-12-31", "format=xml",
                                   "format="])
async def test_bad_dates_and_formats_are_400(api: Api, query):
    store = await api.store()
    response = await api.get(f"/api/stores/{store.id}/report?{query}", store.staff)
    assert response.status_code == 400, response.text
    assert response.json()["message"] in ("date must be a day as YYYY-MM-DD, such as 2026-12-06.",
                                          "format must be json, csv or svg.")


async def test_only_the_stores_staff_and_admins_read_its_report(api: Api):
    store = await api.store()
    other = await api.store()
    customer = await api.customer()
    for actor in (customer, other.staff):
        response = await api.get(f"/api/stores/{store.id}/report?date={DAY}", actor)
        assert response.status_code == 403, response.text
    assert (await api.get(f"/api/stores/{store.id}/report?date={DAY}")).status_code == 401
    assert (await api.get(f"/api/stores/{store.id}/report?date={DAY}", await api.admin())).status_code == 200
    assert (await api.get(f"/api/stores/65f7a8b9c1234567890abcde/report", store.staff)).status_code == 404
