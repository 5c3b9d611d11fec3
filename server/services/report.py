"""The store's day in numbers (issue 27): one indexed read, then one pass over its projection.

Only the store's orders of the day and of the day before are read, through the `store_orders`
index (`store_id`, `created_at`), projected to the ten fields the report needs: the day before's
are the ones the ready-time estimator had learned from (its last 250); only when that day had
fewer than that is the rest of the week read too.
The sums are made in this process, in one pass (server/domain/day_report.py), rather than in an
aggregation pipeline: the embedded nx-27017 evaluates pipelines in Python and gets date ranges in
`$match` and date arithmetic wrong (README, "Embedded MongoDB"), while these range reads are
right on both servers. A day of a busy store is a few hundred orders; its history is not read.
"""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from server.domain.clock import as_utc
from server.domain.day_report import DayOrder, day_report
from server.domain.eta import HISTORY_SIZE, finished_from_spans
from server.services import order_store
from server.services.ready_times import LEARNING_WINDOW

# The estimator learns from the last HISTORY_SIZE finished orders; a few more are read for the ones
# that were cancelled instead.
HISTORY_BEFORE = HISTORY_SIZE + 50
_FIELDS = {name: 1 for name in ("order_status", "total_paise", "created_at", "accepted_at", "ready_at",
                                "cancelled_at", "cancellation_reason", "no_show_at", "slot_deferred", "items")}


def _moment(value: Any) -> datetime | None:
    return as_utc(value) if value else None


def day_bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The day's first instant and the next day's, in UTC (a day of a zone with summer time may
    last 23 or 25 hours)."""
    return (datetime.combine(day, time(0), zone).astimezone(ZoneInfo("UTC")),
            datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(ZoneInfo("UTC")))


def _day_order(doc: dict[str, Any]) -> DayOrder:
    return DayOrder(
        order_id=str(doc["_id"]), status=doc.get("order_status", ""), total_paise=int(doc.get("total_paise") or 0),
        created_at=as_utc(doc["created_at"]), accepted_at=_moment(doc.get("accepted_at")),
        ready_at=_moment(doc.get("ready_at")), cancelled_at=_moment(doc.get("cancelled_at")),
        cancellation_reason=doc.get("cancellation_reason"), no_show=bool(doc.get("no_show_at")),
        cap_hit=bool(doc.get("slot_deferred")),
        items=tuple((item.get("name", ""), int(item.get("quantity") or 0), int(item.get("total_paise") or 0))
                    for item in doc.get("items") or ()))


async def store_day(store_id: str, day: date, zone: ZoneInfo) -> dict[str, Any]:
    start, end = day_bounds(day, zone)
    # One read for the day and the day before it (whose orders the estimator learned from), split
    # here: every query is a scan of the whole collection on nx-27017, so a second one costs more
    # than the day before's few hundred documents.
    docs = await order_store.store_day(store_id, start - timedelta(days=1), end, _FIELDS)
    day_orders = [_day_order(doc) for doc in docs if doc["created_at"] >= start]
    before = sorted((doc for doc in docs if doc["created_at"] < start), key=lambda doc: doc["created_at"],
                    reverse=True)[:HISTORY_BEFORE]
    spans = _spans(before)
    if len(spans) < HISTORY_SIZE and len(before) < HISTORY_BEFORE:  # a quiet day before: the whole week
        spans = _spans(await order_store.finished_before(store_id, start, LEARNING_WINDOW, HISTORY_BEFORE))
    history = finished_from_spans(spans)[-HISTORY_SIZE:]
    return {"storeId": store_id, "date": day.isoformat(), "timezone": zone.key,
            **day_report(day_orders, history, zone)}


def _spans(docs: list[dict[str, Any]]) -> list[tuple[datetime, datetime]]:
    """(accepted, ready) of the finished ones among `docs`."""
    return [(as_utc(doc["accepted_at"]), as_utc(doc["ready_at"])) for doc in docs
            if doc.get("accepted_at") and doc.get("ready_at")]


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV, one number a row: `section,name,measure,value`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["section", "name", "measure", "value"])
    rows: list[tuple[str, str, str, Any]] = [
        ("day", report["date"], "orders", report["orders"]),
        ("day", report["date"], "revenue", report["revenue"]),
        ("day", report["date"], "late", report["late"]["count"]),
        ("day", report["date"], "readied", report["late"]["of"]),
        ("day", report["date"], "no_shows", report["noShows"]),
        ("day", report["date"], "cancellations", report["cancellations"]["total"]),
        ("day", report["date"], "cap_hit", report["capHit"]),
        ("day", report["date"], "average_minutes", report["prepTime"]["averageMinutes"]),
        ("day", report["date"], "p90_minutes", report["prepTime"]["p90Minutes"]),
    ]
    rows += [("status", status, "orders", count) for status, count in report["byStatus"].items()]
    for hour in report["hours"]:
        name = f"{hour['hour']:02d}:00"
        rows += [("hour", name, "readied", hour["count"]), ("hour", name, "average_minutes", hour["averageMinutes"]),
                 ("hour", name, "p90_minutes", hour["p90Minutes"])]
    rows += [("cancellation", reason, "orders", count) for reason, count in report["cancellations"]["byReason"].items()]
    for item in report["topItems"]:
        rows += [("item", item["name"], "quantity", item["quantity"]), ("item", item["name"], "revenue", item["revenue"])]
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _cell(value: Any) -> Any:
    """A cell a spreadsheet shows as written: a menu item's name that starts like a formula
    ("=1+1", "@SUM") is prefixed with an apostrophe, as OWASP advises for CSV exports."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
