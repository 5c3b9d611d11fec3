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
an array-containment test that no index serves, so it would read every order. A string `_id` of 24
hex digits is read by nx-27017 as an ObjectId (lower-cased), so a transaction id's claim is keyed
with a prefix.

Ready for `orders` sharded by `{store_id: 1}` (README, *MongoDB at scale*): every write to one
order names its store (`_one`), so `mongos` sends it to one shard; a unique index starts with
`store_id`, as a sharded collection requires of the shard key; a UPI transaction id, unique across
every store, is claimed in `transaction_ids`, a small collection left unsharded.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, Literal

from beanie import SortDirection
from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from server.domain.clock import SYSTEM_CLOCK, as_utc
from server.domain.lifecycle import OrderStatus, PaymentStatus
from server.models import Order
from server.services.outage import RawCollection, refuse_unwritten

# Each index names the query it serves.
INDEXES = [
    # `insert` of a new order: the order number a counter handed out is unique in its store (the
    # counter makes it unique everywhere; a sharded collection keeps only unique indexes prefixed by
    # the shard key, and nothing looks an order up by its number).
    IndexModel([("store_id", ASCENDING), ("order_number", ASCENDING)], name="store_order_number_unique",
               unique=True),
    # `insert`: one order per payment reference in its store (the reference is only shown in the
    # store's UPI link, never looked up).
    IndexModel([("store_id", ASCENDING), ("payment_reference", ASCENDING)], name="store_payment_reference_unique",
               unique=True),
    # `by_checkout` (a checkout token names its store), `insert`'s guard against a checkout placed
    # twice, and `_carrier`.
    IndexModel([("store_id", ASCENDING), ("checkout_id", ASCENDING)], name="store_checkout_unique", unique=True),
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
    # `deadline_batch` (the tag stays on a cancelled order: clearing it would write each order twice).
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
# Unique indexes of one field, from before orders were ready for sharding: dropped at start-up (the
# transaction id's once its claims exist), since a sharded collection cannot keep them.
_UNSHARDABLE = ({"order_number": 1}, {"payment_reference": 1}, {"checkout_id": 1}, {"transaction_id": 1})
# A claim on a transaction id whose order does not carry it is taken over only after this long: until
# then the order's write may still be on its way (every write gives up within the driver's timeouts).
CLAIM_LEASE = timedelta(minutes=2)
# What `claim_transaction` found: the claim is this caller's, its order's checkout's already, or another order's.
TransactionClaim = Literal["claimed", "held", "taken"]
# Slack for a date range the engine may compare to the whole second only; decided exactly here.
_SECOND = timedelta(seconds=1)
# Rows read beyond a limit for those the slack lets in at the front and the exact check drops.
_SLACK_ROWS = 50
# Compare-and-sets sent in one bulk write by `change_many` (about half a second of nx-27017's time).
CHANGE_BATCH = 500
# Outbox marks cleared in one bulk write (about 2 ms of nx-27017's time).
MARKS_BATCH = 5


def _orders() -> RawCollection:
    return Order.get_pymongo_collection()


def _batches(orders: Any = None) -> RawCollection:
    """`deadline_batches`: one record per deadline batch claimed and not yet published (small, unsharded)."""
    collection: RawCollection = (orders if orders is not None else _orders()).database["deadline_batches"]
    return collection


def _claims() -> RawCollection:
    """`transaction_ids`: one claim per UPI transaction id, naming the order (and its store and checkout)."""
    return _orders().database["transaction_ids"]


def _is(value: str) -> dict[str, str]:
    """Equality on a customer or store id, written so nx-27017's index on the field applies."""
    return {"$eq": value}


def _one(order: Order) -> dict[str, Any]:
    """The filter of one order as a sharded cluster routes it: its shard key, store and id."""
    return {"store_id": _is(order.store_id), "_id": order.id}


def _owned(owner: dict[str, str]) -> dict[str, dict[str, str]]:
    """`owner` ({"store_id": ...} or {"user_id": ...}) as a filter matched through the index."""
    return {field: _is(value) for field, value in owner.items()}


def orders_in(database: Any) -> Any:
    """The orders collection of `database` as another client reaches it (the deadline enforcer's own)."""
    return database[_orders().name]


async def create_indexes() -> None:
    """Declare the indexes above (at start-up, after the models are bound to the database), in place
    of the single-field unique ones a database from before may have; those orders' transaction ids
    are claimed first, so none is free while its old index is dropped."""
    orders = _orders()
    old = [index async for index in await orders.list_indexes()
           if index.get("unique") and dict(index["key"]) in _UNSHARDABLE]
    if any(dict(index["key"]) == {"transaction_id": 1} for index in old):
        await _claim_carried_transactions()
    for index in old:
        # By the name the server reports: nx-27017 names indexes itself.
        await orders.drop_index(index["name"])
    await orders.create_indexes(INDEXES)
    await _batches().create_index([("claimed_at", ASCENDING)], name="claimed_at")


async def _claim_carried_transactions() -> None:
    """A claim for every transaction id an order already carries (some may exist from an earlier try)."""
    carried = await _orders().find({"transaction_id": {"$exists": True}},
                                   {"transaction_id": 1, "store_id": 1, "checkout_id": 1, "created_at": 1}).to_list()
    if not carried:
        return
    try:
        await _claims().insert_many([_claim(row["transaction_id"], row["_id"], row["store_id"], row["checkout_id"],
                                            as_utc(row["created_at"])) for row in carried], ordered=False)
    except BulkWriteError as exc:
        if any(error.get("code") != 11000 for error in exc.details.get("writeErrors", ())):
            raise


# --- one order ---------------------------------------------------------------------------------

async def get(order_id: str | ObjectId) -> Order | None:
    """The order, or None (an id that is no ObjectId matches nothing)."""
    if not ObjectId.is_valid(order_id):
        return None
    # Not `Order.get`: Beanie builds a pydantic TypeAdapter for every document it parses there.
    document = await _orders().find_one({"_id": ObjectId(order_id)})
    if document is None:
        return None
    found: Order = Order.model_validate(document)  # typed here, as in `change`
    return found


async def by_checkout(store_id: str, checkout_id: str) -> Order | None:
    return await Order.find_one({"store_id": _is(store_id), "checkout_id": _is(checkout_id)})


async def insert(order: Order) -> Order:
    """Store a new order; DuplicateKeyError when its checkout or number is taken in its store."""
    return await order.insert()


# --- a UPI transaction id, unique across every store --------------------------------------------

def _claim_id(transaction_id: str) -> str:
    return f"upi:{transaction_id}"  # never 24 hex digits (see above)


def _claim(transaction_id: str, order_id: ObjectId | None, store_id: str, checkout_id: str,
           now: datetime) -> dict[str, Any]:
    return {"_id": _claim_id(transaction_id), "order_id": str(order_id), "store_id": store_id,
            "checkout_id": checkout_id, "claimed_at": now}


async def _carrier(transaction_id: str, claim: dict[str, Any]) -> ObjectId | None:
    """The id of the claiming checkout's order if it carries the transaction id (one targeted read)."""
    found = await _orders().find_one({"store_id": _is(claim["store_id"]), "checkout_id": _is(claim["checkout_id"]),
                                      "transaction_id": _is(transaction_id)}, {"_id": 1})
    return None if found is None else found["_id"]


async def _live(transaction_id: str, claim: dict[str, Any], now: datetime) -> bool:
    """Whether the claim holds: its order carries the transaction id, or may still be writing it."""
    return as_utc(claim["claimed_at"]) > now - CLAIM_LEASE or await _carrier(transaction_id, claim) is not None


async def transaction_taken(transaction_id: str, now: datetime | None = None,
                            checkout: tuple[str, str] | None = None) -> bool:
    """Whether an order holds this UPI transaction id, in any store, other than the order of
    `checkout` (its store and checkout id: the same checkout placed twice at once)."""
    claim = await _claims().find_one({"_id": _claim_id(transaction_id)})
    if claim is None or (claim["store_id"], claim["checkout_id"]) == checkout:
        return False
    return await _live(transaction_id, claim, now or SYSTEM_CLOCK.now())


async def claim_transaction(transaction_id: str, order: Order, now: datetime) -> TransactionClaim:
    """Claim the transaction id for `order` before the write that gives it to the order:
    "claimed" (the caller gives it back with `release_transaction` if that write fails), "held"
    (the order's checkout holds it already: nothing to give back) or "taken" (by another order).

    A claim whose order does not carry the transaction id after `CLAIM_LEASE` was left by a process
    that stopped between the claim and the write: it is taken over, by one caller only.
    """
    claims = _claims()
    for _ in range(3):
        try:
            await claims.insert_one(_claim(transaction_id, order.id, order.store_id, order.checkout_id, now))
            return "claimed"
        except DuplicateKeyError:
            pass
        held = await claims.find_one({"_id": _claim_id(transaction_id)})
        if held is None:
            continue  # given back meanwhile
        if (held["store_id"], held["checkout_id"]) == (order.store_id, order.checkout_id):
            return "held"
        if await _live(transaction_id, held, now):
            return "taken"
        stale = {"_id": held["_id"], "order_id": _is(held["order_id"]), "store_id": _is(held["store_id"]),
                 "checkout_id": _is(held["checkout_id"])}
        claim = _claim(transaction_id, order.id, order.store_id, order.checkout_id, now)
        taken_over = await claims.find_one_and_update(stale, {"$set": {k: v for k, v in claim.items() if k != "_id"}})
        if taken_over is not None:
            return "claimed"
    return "taken"


async def release_transaction(transaction_id: str, order: Order) -> None:
    """Give back the order's claim on the transaction id when its checkout's order does not carry it
    (its write failed, or a later payment replaced it); when that order is another of the same
    checkout (placed twice at once), the claim is made to name it."""
    mine = {"_id": _claim_id(transaction_id), "order_id": _is(str(order.id))}
    carrier = await _carrier(transaction_id, {"store_id": order.store_id, "checkout_id": order.checkout_id})
    if carrier is None:
        await _claims().delete_one(mine)
    elif carrier != order.id:
        await _claims().update_one(mine, {"$set": {"order_id": str(carrier)}})


# --- one order's writes, each carrying its shard key -------------------------------------------

async def change(order: Order, update: dict[str, Any], *, confirm_miss: bool = True) -> Order | None:
    """The compare-and-set of every change: applied only to the order's `version`, the order after
    it; None when another change came first. Raises StorageFailure when the write was refused
    although the order still matched (checked with a read, unless `confirm_miss` is False: the
    caller will read the order anyway)."""
    expected = {**_one(order), "version": order.version}
    document = await _orders().find_one_and_update(expected, update, return_document=ReturnDocument.AFTER)
    if document is None:
        if confirm_miss:
            await refuse_unwritten(_orders(), expected)
        return None
    # Typed here: Beanie's Document derives from lazy_model's untyped LazyModel, so mypy reads
    # pydantic's methods on it as Any.
    changed: Order = Order.model_validate(document)
    return changed


async def claim_otp_attempt(order: Order, limit: int, lock_until: datetime, now: datetime) -> datetime | None:
    """Count one pickup-code attempt; None when claimed, else when the lock on attempts ends.

    Each claim is one atomic update whose filter is the limit, so however many requests arrive at
    once on however many processes, at most `limit` get to compare; the claim that takes the last
    attempt sets the lock in the same update.
    """
    orders = _orders()
    one = _one(order)
    for _ in range(3):
        if await orders.find_one_and_update(
                {**one, "otp_failed_attempts": {"$lt": limit - 1}},
                {"$inc": {"otp_failed_attempts": 1}}, projection={"_id": 1}) is not None:
            return None
        if await orders.find_one_and_update(
                {**one, "otp_failed_attempts": limit - 1},
                {"$inc": {"otp_failed_attempts": 1}, "$set": {"otp_locked_until": lock_until}},
                projection={"_id": 1}) is not None:
            return None
        # Every attempt of the window is taken: locked until the lock ends.
        raw = await orders.find_one(one, {"otp_locked_until": 1, "otp_failed_attempts": 1})
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
            {**one, "otp_locked_until": stored, "otp_failed_attempts": {"$gte": limit}},
            {"$set": {"otp_failed_attempts": 0}, "$unset": {"otp_locked_until": ""}})
    # Three claims missed an order whose attempts were left: they matched but were not stored.
    await refuse_unwritten(orders, {**one, "otp_failed_attempts": {"$lt": limit}})
    return lock_until


async def release_slot(order: Order) -> bool:
    """Mark the order's cap slot given back; True for exactly one caller."""
    cleared = await _orders().update_one({**_one(order), "slot_held": {"$exists": True}},
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


async def recorded_no_show(order_id: ObjectId) -> tuple[str | None, Any]:
    """(the order's store, None when there is no such order; its no-show as stored, None when it
    has none). A read by id alone: on a sharded cluster it asks every shard."""
    record = await _orders().find_one({"_id": order_id}, {"no_show_at": 1, "store_id": 1})
    return (record or {}).get("store_id"), (record or {}).get("no_show_at")


async def clear_no_show(store_id: str, order_id: ObjectId, recorded: Any, marks: dict[str, Any]) -> bool:
    """Move the no-show just read into `no_show_recorded_at`, with `marks`; True for one caller only
    (the filter matches the no-show as read, in whatever form the database keeps it)."""
    result = await _orders().update_one(
        {"store_id": _is(store_id), "_id": order_id, "no_show_at": recorded},
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


# What ready-time estimates hold of an order in a store's queue (and `_id`), dates as dates.
_QUEUE_FIELDS = ("user_id", "accepted_at", "created_at", "slot_deferred", "slot_start", "version")
_QUEUE_DATES = ("accepted_at", "created_at", "slot_start")


async def queue(store_id: str, statuses: list[str]) -> list[dict[str, Any]]:
    """The store's orders in `statuses` as `queue_row`s: a busy store's whole queue, so not as
    whole orders."""
    rows = await _orders().find({"store_id": _is(store_id), "order_status": {"$in": statuses}},
                                dict.fromkeys(_QUEUE_FIELDS, 1)).to_list()
    return [_dates(row, *_QUEUE_DATES) for row in rows]


def queue_row(order: Order) -> dict[str, Any]:
    """An order as `queue` reads it, for a queue kept current with changes made since its read."""
    return _dates({"_id": order.id, **{name: getattr(order, name) for name in _QUEUE_FIELDS}}, *_QUEUE_DATES)


async def board_rows(store_id: str, statuses: list[str]) -> list[dict[str, Any]]:
    """What a pickup board shows of the store's orders in `statuses`, dates as dates."""
    rows = await _orders().find(
        {"store_id": _is(store_id), "order_status": {"$in": statuses}},
        {"order_number": 1, "order_status": 1, "accepted_at": 1, "created_at": 1, "ready_at": 1}).to_list()
    return [_dates(row, "accepted_at", "created_at", "ready_at") for row in rows]


async def recently_ready(store_id: str, since: datetime, limit: int) -> list[dict[str, Any]]:
    """The store's orders marked ready at or after `since`, the latest first, at most `limit`: their
    `_id`, `version`, `accepted_at` and `ready_at` (dates as dates), not whole orders (a busy
    store's day of them, read with every read of its queue)."""
    rows = await _orders().find({"store_id": _is(store_id), "ready_at": {"$gte": since - _SECOND}},
                                {"version": 1, "accepted_at": 1, "ready_at": 1}) \
        .sort("ready_at", DESCENDING).limit(limit).to_list()
    rows = [_dates(row, "accepted_at", "ready_at") for row in rows]
    return [row for row in rows if row.get("ready_at") is not None and row["ready_at"] >= since]


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
    compare-and-set that decides between racing enforcers); how many it changed. Without the shard
    key by design: a batch's orders are of many stores, and MongoDB sends a multi-document update
    to every shard that may hold them."""
    result = await (orders if orders is not None else _orders()).update_many(
        {"_id": {"$in": order_ids}, **state},
        # An outbox mark of an earlier change goes too: the batch publishes the newer state.
        {"$set": changes, "$unset": {"next_deadline_at": "", "outbox_at": ""}, "$inc": {"version": 1}})
    return result.modified_count


async def open_deadline_batch(batch: str, now: datetime, *, orders: Any = None) -> None:
    """Record a deadline batch before its claim: until `close_deadline_batch`, any process's relay
    publishes its orders once the record is stale (`stale_deadline_batches`: its pass died). One
    small document per batch, where an outbox mark on each order would be a second write of every
    cancelled order (clearing it), and the embedded engine's cost is per document written."""
    await _batches(orders).insert_one({"_id": batch, "claimed_at": now, "claimed": False})


async def deadline_batch_claimed(batch: str, now: datetime, *, orders: Any = None) -> None:
    """The batch's claim is written whole: from `now` on, a relay that finds the record stale
    publishes every order the batch cancelled, not those of a claim still under way."""
    await _batches(orders).update_one({"_id": batch}, {"$set": {"claimed_at": now, "claimed": True}})


async def close_deadline_batch(batch: str, *, orders: Any = None) -> None:
    """The batch's orders are published (or it claimed none)."""
    await _batches(orders).delete_one({"_id": batch})


async def stale_deadline_batches(cutoff: datetime, unclaimed_cutoff: datetime, limit: int) -> list[str]:
    """Deadline batches whose pass died before publishing them: claimed at `cutoff` or earlier, or
    recorded at `unclaimed_cutoff` or earlier without their claim having been seen to end (a claim
    takes far less than that; one still running would be published in part)."""
    rows = await _batches().find({}, {"claimed_at": 1, "claimed": 1}).sort("claimed_at", 1).limit(limit).to_list()
    return [row["_id"] for row in rows
            if as_utc(row["claimed_at"]) <= (cutoff if row.get("claimed") else unclaimed_cutoff)]


async def deadline_batch(batch: str, *, orders: Any = None) -> list[Order]:
    """The orders one deadline batch cancelled (each keeps its batch's tag)."""
    found = await (orders if orders is not None else _orders()).find({"deadline_batch": batch}).to_list()
    return [Order.model_validate(document) for document in found]


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


async def change_many(changes: list[tuple[Order, dict[str, Any]]]) -> list[Order]:
    """Many compare-and-sets on `version` in one bulk write: (order, update); the orders now one
    version past the one expected, as they are (this write's, or a concurrent change's that came
    first: the caller tells them apart by what it wrote)."""
    changed: list[Order] = []
    # In bounded batches: each is one command, and the engine serves a command whole before the
    # next (nx-27017 on its only thread, MongoDB holding its locks), so other requests and the
    # driver's heartbeats get their turn between them however many orders a store closing moves.
    for start in range(0, len(changes), CHANGE_BATCH):
        batch = changes[start:start + CHANGE_BATCH]
        await _orders().bulk_write([UpdateOne({**_one(order), "version": order.version}, update)
                                    for order, update in batch], ordered=False)
        expected = {str(order.id): order.version + 1 for order, _ in batch}
        found = await Order.find({"_id": {"$in": [order.id for order, _ in batch]}}).to_list()
        # A version past the expected one means a later change came after this one: its own event tells.
        changed += [order for order in found if order.version == expected[str(order.id)]]
    return changed


# --- the outbox and partners' webhook marks -----------------------------------------------------

async def clear_outbox_marks(published: dict[ObjectId, tuple[str, int]]) -> None:
    """The marks of these published versions, order id → (store id, version) (a newer change's
    mark stays), in bulk writes of `MARKS_BATCH`: the engine serves each command whole, so a
    request that arrives meanwhile waits for one small batch, not for every mark of the pass."""
    updates = [UpdateOne({"store_id": _is(store_id), "_id": order_id, "version": version,
                          "outbox_at": {"$exists": True}}, {"$unset": {"outbox_at": ""}})
               for order_id, (store_id, version) in published.items()]
    for start in range(0, len(updates), MARKS_BATCH):
        await _orders().bulk_write(updates[start:start + MARKS_BATCH], ordered=False)


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


async def clear_webhook_marks(order: Order) -> None:
    """Cleared only if no change came in meanwhile (the order's version): that change rewrote the marks."""
    await _orders().update_one({**_one(order), "version": order.version},
                               {"$unset": {"webhook_events": "", "webhook_deadline": "", "webhook_pending_at": ""}})


async def stale_webhook_marks(cutoff: datetime, limit: int) -> list[ObjectId]:
    """Orders whose webhook events were marked at `cutoff` or earlier."""
    # Walks the marks' index from the oldest, as `stale_outbox` does.
    rows = await _orders().find({"webhook_pending_at": {"$exists": True}},
                                {"webhook_pending_at": 1}).sort("webhook_pending_at", 1).limit(limit).to_list()
    return [row["_id"] for row in (_dates(row, "webhook_pending_at") for row in rows)
            if row["webhook_pending_at"] <= cutoff]
