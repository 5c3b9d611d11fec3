"""The order store: every query on the `orders` collection, and the indexes that serve them.

Written for MongoDB's semantics. The embedded nx-27017 differs in a few ways (README, *The
embedded engine*), and this is the one module that knows: dates written by `$set` may come back
as strings (every date read here goes through `as_utc`), `$lt`/`$lte` on dates compare whole
seconds (range filters are widened by a second, or narrowed to a coarse bound, then decided here to
the millisecond), `{field: None}` misses absent fields (absence is asked with `$exists`), an
ObjectId is matched only in `_id` (references are hex strings), index options may be dropped
(uniqueness is also checked before an insert where it matters) and date accumulators come back as
strings (the next deadline is a sorted `find`, not a `$min`). A customer or store is matched
with an explicit `$eq` (`_is`): the same match on MongoDB, while nx-27017 turns a bare value into
an array-containment test that no index serves, so it would read every order.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from beanie import SortDirection
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne

from server.domain.clock import as_utc
from server.domain.lifecycle import OrderStatus, PaymentStatus
from server.models import Order
from server.services.outage import RawCollection, refuse_unwritten

# Each index names the query it serves.
INDEXES = [
    # `insert` of a new order: the order number a counter handed out is unique.
    IndexModel([("order_number", ASCENDING)], name="order_number_unique", unique=True),
    # `insert`: one order per payment reference.
    IndexModel([("payment_reference", ASCENDING)], name="payment_reference_unique", unique=True),
    # `by_checkout`, and `insert`'s guard against a checkout placed twice.
    IndexModel([("checkout_id", ASCENDING)], name="checkout_unique", unique=True),
    # `transaction_taken`, and the guard of `insert` and `change` against a reused UPI transaction.
    IndexModel([("transaction_id", ASCENDING)], name="transaction_id_unique", unique=True,
               partialFilterExpression={"transaction_id": {"$type": "string"}}),
    # `page` for a customer, `customer_finished`, `no_shows_of`.
    IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="customer_orders"),
    # `page` for a store, `store_day`, `finished_before`.
    IndexModel([("store_id", ASCENDING), ("created_at", DESCENDING)], name="store_orders"),
    # `store_active`, `board_rows`, `waiting`, `store_finished`.
    IndexModel([("store_id", ASCENDING), ("order_status", ASCENDING)], name="store_status"),
    # `recall`, `recently_ready`.
    IndexModel([("store_id", ASCENDING), ("updated_at", DESCENDING)], name="store_recent"),
    # `page` for an admin.
    IndexModel([("created_at", DESCENDING)], name="all_orders"),
    # `deadline_batch` and `finish_deadline_batch`.
    IndexModel([("deadline_batch", ASCENDING)], name="deadline_batch", sparse=True),
    # `no_show_standing`.
    IndexModel([("user_id", ASCENDING), ("no_show_at", DESCENDING)], name="no_shows", sparse=True),
    # `due`, `next_deadline_after`.
    IndexModel([("next_deadline_at", ASCENDING)], name="next_deadline", sparse=True),
    # `stale_outbox`.
    IndexModel([("outbox_at", ASCENDING)], name="outbox", sparse=True),
    # `stale_webhook_marks`.
    IndexModel([("webhook_pending_at", ASCENDING)], name="webhook_pending", sparse=True),
]
# Slack for a date range the engine may compare to the whole second only; decided exactly here.
_SECOND = timedelta(seconds=1)
# Rows read beyond a limit for those the slack lets in at the front and the exact check drops.
_SLACK_ROWS = 50


def _orders() -> RawCollection:
    return Order.get_pymongo_collection()


def _is(value: str) -> dict[str, str]:
    """Equality on a customer or store id, written so nx-27017's index on the field applies."""
    return {"$eq": value}


def _owned(owner: dict[str, str]) -> dict[str, dict[str, str]]:
    """`owner` ({"store_id": ...} or {"user_id": ...}) as a filter matched through the index."""
    return {field: _is(value) for field, value in owner.items()}


def orders_in(database: Any) -> Any:
    """The orders collection of `database` as another client reaches it (the deadline enforcer's own)."""
    return database[_orders().name]


async def create_indexes() -> None:
    """Declare the indexes above (at start-up, after the models are bound to the database)."""
    await _orders().create_indexes(INDEXES)


# --- one order ---------------------------------------------------------------------------------

async def get(order_id: str | ObjectId) -> Order | None:
    """The order, or None (an id that is no ObjectId matches nothing)."""
    if not ObjectId.is_valid(order_id):
        return None
    return await Order.get(ObjectId(order_id))


async def by_checkout(checkout_id: str) -> Order | None:
    return await Order.find_one({"checkout_id": checkout_id})


async def transaction_taken(transaction_id: str, other_than: ObjectId | None = None) -> bool:
    """Whether another order already carries this UPI transaction id."""
    query: dict[str, Any] = {"transaction_id": transaction_id}
    if other_than is not None:
        query["_id"] = {"$ne": other_than}
    return await Order.find_one(query) is not None


async def insert(order: Order) -> Order:
    """Store a new order; DuplicateKeyError when its checkout, number or transaction is taken."""
    return await order.insert()


async def change(order_id: ObjectId | None, version: int, update: dict[str, Any]) -> Order | None:
    """The compare-and-set of every change: applied only to `version`, the order after it; None
    when another change came first. Raises DuplicateKeyError for a transaction id taken meanwhile,
    StorageFailure when the write was refused although the order still matched."""
    expected = {"_id": order_id, "version": version}
    document = await _orders().find_one_and_update(expected, update, return_document=ReturnDocument.AFTER)
    if document is None:
        await refuse_unwritten(_orders(), expected)
        return None
    # Typed here: Beanie's Document derives from lazy_model's untyped LazyModel, so mypy reads
    # pydantic's methods on it as Any.
    changed: Order = Order.model_validate(document)
    return changed


async def claim_otp_attempt(order_id: ObjectId | None, limit: int, lock_until: datetime,
                            now: datetime) -> datetime | None:
    """Count one pickup-code attempt; None when claimed, else when the lock on attempts ends.

    Each claim is one atomic update whose filter is the limit, so however many requests arrive at
    once on however many processes, at most `limit` get to compare; the claim that takes the last
    attempt sets the lock in the same update.
    """
    orders = _orders()
    for _ in range(3):
        if await orders.find_one_and_update(
                {"_id": order_id, "otp_failed_attempts": {"$lt": limit - 1}},
                {"$inc": {"otp_failed_attempts": 1}}, projection={"_id": 1}) is not None:
            return None
        if await orders.find_one_and_update(
                {"_id": order_id, "otp_failed_attempts": limit - 1},
                {"$inc": {"otp_failed_attempts": 1}, "$set": {"otp_locked_until": lock_until}},
                projection={"_id": 1}) is not None:
            return None
        # Every attempt of the window is taken: locked until the lock ends.
        raw = await orders.find_one({"_id": order_id}, {"otp_locked_until": 1, "otp_failed_attempts": 1})
        if raw is None:
            return lock_until
        stored = raw.get("otp_locked_until")
        if stored is None:
            continue  # no lock: a new window opened meanwhile (or the claims were not stored)
        if as_utc(stored) > now:
            return as_utc(stored)
        # The lock has ended: exactly one caller opens the next window (the filter matches
        # the stored lock as read, in whatever form the database keeps it), then all retry.
        await orders.update_one(
            {"_id": order_id, "otp_locked_until": stored, "otp_failed_attempts": {"$gte": limit}},
            {"$set": {"otp_failed_attempts": 0}, "$unset": {"otp_locked_until": ""}})
    # Three claims missed an order whose attempts were left: they matched but were not stored.
    await refuse_unwritten(orders, {"_id": order_id, "otp_failed_attempts": {"$lt": limit}})
    return lock_until


async def release_slot(order_id: ObjectId | None) -> bool:
    """Mark the order's cap slot given back; True for exactly one caller."""
    cleared = await _orders().update_one({"_id": order_id, "slot_held": {"$exists": True}},
                                         {"$unset": {"slot_held": ""}})
    return cleared.modified_count == 1


# --- no-shows ------------------------------------------------------------------------------------

def _no_shows(user_id: str) -> dict[str, Any]:
    return {"user_id": _is(user_id), "no_show_at": {"$exists": True}}


async def no_show_standing(user_id: str) -> tuple[int, datetime | None]:
    """How many no-shows count against the customer, and the latest: one `find` of the few there are
    (a count is an aggregation, which nx-27017 runs in Python, and a second command for the latest)."""
    found = await _orders().find(_no_shows(user_id), {"no_show_at": 1, "_id": 0}).to_list()
    return len(found), max((as_utc(row["no_show_at"]) for row in found), default=None)


async def no_shows_of(user_id: str) -> list[Order]:
    """Every no-show recorded against the customer, the cleared ones too, newest first."""
    query = {"user_id": _is(user_id), "$or": [{"no_show_at": {"$exists": True}},
                                         {"no_show_cleared_at": {"$exists": True}}]}
    return await Order.find(query).sort([("created_at", SortDirection.DESCENDING)]).limit(100).to_list()


async def recorded_no_show(order_id: ObjectId) -> tuple[bool, Any]:
    """(whether the order exists, its no-show as stored: None when it has none)."""
    record = await _orders().find_one({"_id": order_id}, {"no_show_at": 1})
    return record is not None, (record or {}).get("no_show_at")


async def clear_no_show(order_id: ObjectId, recorded: Any, marks: dict[str, Any]) -> bool:
    """Move the no-show just read into `no_show_recorded_at`, with `marks`; True for one caller only
    (the filter matches the no-show as read, in whatever form the database keeps it)."""
    result = await _orders().update_one(
        {"_id": order_id, "no_show_at": recorded},
        {"$unset": {"no_show_at": ""}, "$set": {"no_show_recorded_at": recorded, **marks}})
    return result.modified_count == 1


# --- listings --------------------------------------------------------------------------------

async def page(query: dict[str, Any], number: int, limit: int) -> tuple[list[Order], int]:
    """One page of the orders matching `query`, newest first, and how many match in all."""
    total = await Order.find(query).count()
    orders = await Order.find(query).sort([("created_at", SortDirection.DESCENDING)]).skip((number - 1) * limit) \
        .limit(limit).to_list()
    return orders, total


async def by_ids(order_ids: Iterable[str]) -> list[Order]:
    """These orders as they are now (ids that are not order ids match nothing), in one query."""
    valid = [ObjectId(order_id) for order_id in order_ids if ObjectId.is_valid(order_id)]
    return await Order.find({"_id": {"$in": valid}}).to_list() if valid else []


async def recall(store_id: str, statuses: list[str], limit: int) -> list[Order]:
    """The store's orders in `statuses`, the most recently changed first."""
    return await Order.find({"store_id": _is(store_id), "order_status": {"$in": statuses}}) \
        .sort("-updated_at").limit(limit).to_list()


async def in_statuses(owner: dict[str, str], statuses: Iterable[str]) -> list[Order]:
    """The orders of `owner` ({"store_id": ...} or {"user_id": ...}) in these statuses."""
    return await Order.find({**_owned(owner), "order_status": {"$in": [str(status) for status in statuses]}}).to_list()


async def finished_since(owner: dict[str, str], finished: Iterable[str], since: datetime, scan: int,
                         newest_by: str) -> list[Order]:
    """The orders of `owner` in the `finished` statuses last changed at or after `since`, among the
    newest `scan` by `newest_by`: decided here, not by a date range the engine may miss."""
    found = await Order.find({**_owned(owner), "order_status": {"$in": [str(status) for status in finished]}}
                             ).sort(f"-{newest_by}").limit(scan).to_list()
    return [order for order in found if as_utc(order.updated_at) >= since]


async def queue(store_id: str, statuses: list[str]) -> list[dict[str, Any]]:
    """What ready-time estimates read of the store's orders in `statuses` (`_id`, `user_id`,
    `accepted_at`, `created_at`, `slot_deferred`, `slot_start`), dates as dates: a busy store's
    whole queue is read on every recomputation, so not as whole orders."""
    rows = await _orders().find(
        {"store_id": _is(store_id), "order_status": {"$in": statuses}},
        {"user_id": 1, "accepted_at": 1, "created_at": 1, "slot_deferred": 1, "slot_start": 1}).to_list()
    return [_dates(row, "accepted_at", "created_at", "slot_start") for row in rows]


async def board_rows(store_id: str, statuses: list[str]) -> list[dict[str, Any]]:
    """What a pickup board shows of the store's orders in `statuses`, dates as dates."""
    rows = await _orders().find(
        {"store_id": _is(store_id), "order_status": {"$in": statuses}},
        {"order_number": 1, "order_status": 1, "accepted_at": 1, "created_at": 1, "ready_at": 1}).to_list()
    return [_dates(row, "accepted_at", "created_at", "ready_at") for row in rows]


async def recently_ready(store_id: str, since: datetime, limit: int) -> list[Order]:
    """The store's orders marked ready at or after `since`, the latest first, at most `limit`."""
    found = await Order.find({"store_id": _is(store_id), "ready_at": {"$gte": since - _SECOND}}) \
        .sort("-ready_at").limit(limit).to_list()
    return [order for order in found if order.ready_at is not None and as_utc(order.ready_at) >= since]


async def ready_not_expired(now: datetime) -> list[Order]:
    """Ready orders whose customer may still come (pickup reminders)."""
    found = await Order.find({"order_status": OrderStatus.READY.value,
                              "ready_expires_at": {"$gte": now - _SECOND}}).to_list()
    return [order for order in found if order.ready_expires_at is not None and as_utc(order.ready_expires_at) > now]


async def store_day(store_id: str, start: datetime, end: datetime, fields: dict[str, int]) -> list[dict[str, Any]]:
    """The store's orders created in [start, end), with `fields`, `created_at` as a date."""
    rows = await _orders().find({"store_id": _is(store_id), "created_at": {"$gte": start - _SECOND, "$lt": end + _SECOND}},
                                {**fields, "created_at": 1}).to_list()
    rows = [_dates(row, "created_at") for row in rows]
    return [row for row in rows if start <= row["created_at"] < end]


async def finished_before(store_id: str, start: datetime, window: timedelta, limit: int) -> list[dict[str, Any]]:
    """(accepted_at, ready_at) of the store's orders created within `window` before `start`, newest
    first, at most `limit`."""
    rows = await _orders().find(
        {"store_id": _is(store_id), "created_at": {"$gte": start - window - _SECOND, "$lt": start + _SECOND}},
        {"accepted_at": 1, "ready_at": 1, "created_at": 1}
    ).sort("created_at", -1).limit(limit + _SLACK_ROWS).to_list()
    rows = [_dates(row, "accepted_at", "ready_at", "created_at") for row in rows]
    return [row for row in rows if start - window <= row["created_at"] < start][:limit]


def _dates(row: dict[str, Any], *fields: str) -> dict[str, Any]:
    """The row with these fields as UTC dates (nx-27017 returns dates written by `$set` as strings)."""
    for field in fields:
        if row.get(field):
            row[field] = as_utc(row[field])
    return row


# --- deadlines -------------------------------------------------------------------------------

# What the deadlines of an order depend on (`server.domain.deadlines.DeadlineView`), and whose it is.
_DEADLINE_FIELDS = ("order_status", "payment_status", "created_at", "requires_commitment", "is_commitment_confirmed",
                    "commitment_deadline_at", "ready_expires_at", "is_otp_verified", "payment_due_by",
                    "next_deadline_at", "partner_client_id")
_DEADLINE_DATES = ("created_at", "commitment_deadline_at", "ready_expires_at", "payment_due_by", "next_deadline_at")


async def due(now: datetime, limit: int, order_id: ObjectId | None = None, *,
              orders: Any = None) -> list[dict[str, Any]]:
    """At most `limit` orders (or just `order_id`) whose next deadline has come by `now` to the
    millisecond, soonest first: `_id` and the fields their deadlines depend on, dates as dates.
    `orders`: the collection on another client (the enforcer's own)."""
    query: dict[str, Any] = {"next_deadline_at": {"$lte": now + _SECOND}}
    if order_id is not None:
        query["_id"] = order_id
    rows = await (orders if orders is not None else _orders()).find(
        query, dict.fromkeys(_DEADLINE_FIELDS, 1)).sort("next_deadline_at", 1).limit(limit + _SLACK_ROWS).to_list()
    rows = [_dates(row, *_DEADLINE_DATES) for row in rows]
    return [row for row in rows if row.get("next_deadline_at") and row["next_deadline_at"] <= now][:limit]


async def cancel_due(order_ids: list[ObjectId], state: dict[str, Any], changes: dict[str, Any], *,
                     orders: Any = None) -> int:
    """Apply a deadline's cancellation to those of these orders still in `state`, in one update (the
    compare-and-set that decides between racing enforcers); how many it changed."""
    result = await (orders if orders is not None else _orders()).update_many(
        {"_id": {"$in": order_ids}, **state},
        {"$set": changes, "$unset": {"next_deadline_at": ""}, "$inc": {"version": 1}})
    return result.modified_count


async def deadline_batch(batch: str, *, orders: Any = None) -> list[Order]:
    """The orders one deadline batch cancelled, until it has published them."""
    found = await (orders if orders is not None else _orders()).find({"deadline_batch": batch}).to_list()
    return [Order.model_validate(document) for document in found]


async def finish_deadline_batch(batch: str, *, orders: Any = None) -> None:
    """The batch published its orders: nothing is left to relay (cancelled is terminal)."""
    await (orders if orders is not None else _orders()).update_many(
        {"deadline_batch": batch}, {"$unset": {"deadline_batch": "", "outbox_at": ""}})


async def next_deadline_after(after: datetime, *, orders: Any = None) -> datetime | None:
    """The earliest pending deadline later than `after`: a sorted find, not a `$min` (see above)."""
    upcoming = await (orders if orders is not None else _orders()).find(
        {"next_deadline_at": {"$gte": after - _SECOND}}, {"next_deadline_at": 1}
    ).sort("next_deadline_at", 1).limit(100).to_list()
    later = [when for when in (as_utc(doc["next_deadline_at"]) for doc in upcoming) if when > after]
    return min(later, default=None)


# --- a store's closing time for payments --------------------------------------------------------

async def unpaid_of_store(store_id: str) -> list[Order]:
    """The store's placed orders still waiting for their payment."""
    return await Order.find({"store_id": _is(store_id), "order_status": OrderStatus.PLACED.value,
                             "payment_status": PaymentStatus.PENDING.value}).to_list()


async def change_many(changes: list[tuple[ObjectId, int, dict[str, Any]]]) -> list[Order]:
    """Many compare-and-sets on `version` in one bulk write: (order id, version, update); the orders
    now one version past the one expected, as they are (this write's, or a concurrent change's that
    came first: the caller tells them apart by what it wrote)."""
    if not changes:
        return []
    await _orders().bulk_write([UpdateOne({"_id": order_id, "version": version}, update)
                                for order_id, version, update in changes], ordered=False)
    expected = {str(order_id): version + 1 for order_id, version, _ in changes}
    found = await Order.find({"_id": {"$in": [order_id for order_id, _, _ in changes]}}).to_list()
    # A version past the expected one means a later change came after this one: its own event tells.
    return [order for order in found if order.version == expected[str(order.id)]]


# --- the outbox and partners' webhook marks -----------------------------------------------------

async def clear_outbox_marks(published: dict[ObjectId, int]) -> None:
    """One bulk write: the marks of these published versions (a newer change's mark stays)."""
    await _orders().bulk_write([
        UpdateOne({"_id": order_id, "version": version, "outbox_at": {"$exists": True}},
                  {"$unset": {"outbox_at": ""}})
        for order_id, version in published.items()
    ], ordered=False)


async def stale_outbox(cutoff: datetime, limit: int) -> list[Order]:
    """Orders whose change is marked unpublished since `cutoff` or earlier, the oldest first."""
    # The marked orders in the mark's index order, the cutoff decided here: nx-27017 compares a
    # date range on every order, while this walks its index from the oldest mark and stops at `limit`
    # (its marks written by `$set` sort before those written by an insert: one order per form).
    found = await Order.find({"outbox_at": {"$exists": True}}).sort("outbox_at").limit(limit).to_list()
    return [order for order in found if order.outbox_at is not None and as_utc(order.outbox_at) <= cutoff]


async def with_webhook_marks(order_id: ObjectId) -> Order | None:
    """The order, when it carries webhook events not yet turned into deliveries."""
    document = await _orders().find_one({"_id": order_id})
    if document is None or "webhook_pending_at" not in document:
        return None
    marked: Order = Order.model_validate(document)  # typed here, as in `change`
    return marked


async def clear_webhook_marks(order_id: ObjectId | None, version: int) -> None:
    """Cleared only if no change came in meanwhile: that change rewrote the marks."""
    await _orders().update_one({"_id": order_id, "version": version},
                               {"$unset": {"webhook_events": "", "webhook_deadline": "", "webhook_pending_at": ""}})


async def stale_webhook_marks(cutoff: datetime, limit: int) -> list[ObjectId]:
    """Orders whose webhook events were marked at `cutoff` or earlier."""
    # Walks the marks' index from the oldest, as `stale_outbox` does.
    rows = await _orders().find({"webhook_pending_at": {"$exists": True}},
                                {"webhook_pending_at": 1}).sort("webhook_pending_at", 1).limit(limit).to_list()
    return [row["_id"] for row in (_dates(row, "webhook_pending_at") for row in rows)
            if row["webhook_pending_at"] <= cutoff]
