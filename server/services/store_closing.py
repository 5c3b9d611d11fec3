"""A store's closing time for payments (issue 22): from then on the store takes no new orders, and
every order still unpaid when the closing is set must be paid by then.

Setting it stores `closes_at` on the store, then gives each of the store's unpaid orders whose payment
deadline falls later the closing as `payment_due_by` (its deadline becomes the earlier of the two), in
one bulk write of compare-and-sets on the orders' versions, and publishes one event per order moved.
An order that a concurrent change came first to is read again and moved on the next round. A
deadline only ever moves earlier, so the enforcer's claim on an order's state stays exact; reopening
(null) clears the store's closing and leaves the deadlines already moved as they are.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from server.config import Settings
from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.deadlines import next_deadline, payment_deadline
from server.domain.errors import Invalid
from server.models import Order, Store
from server.services import catalog, order_store
from server.services.bus import MessageBus
from server.services.deadlines import DeadlineEnforcer
from server.services.publishing import ChangePublisher
from server.services.webhooks import change_fields

# How far ahead a closing may be set: a store closes within its working day.
MAX_AHEAD = timedelta(hours=24)
# Rounds of moving deadlines: each round moves every order no concurrent change came first to.
MOVE_ROUNDS = 5


class StoreClosing:
    def __init__(self, settings: Settings, publisher: ChangePublisher, enforcer: DeadlineEnforcer, bus: MessageBus,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._publisher = publisher
        self._enforcer = enforcer
        self._bus = bus
        self._clock = clock

    async def set_closing(self, store: Store, closes_at: datetime | None) -> Store:
        """Close the store for payments at `closes_at` (None: open again); the store as stored."""
        now = self._clock.now()
        if closes_at is not None:
            closes_at = closes_at.replace(microsecond=closes_at.microsecond // 1000 * 1000)  # as stored
        if closes_at is not None and not now < closes_at <= now + MAX_AHEAD:
            raise Invalid(messages.CLOSES_AT_OUT_OF_RANGE.format(field="closesAt",
                                                                 hours=int(MAX_AHEAD.total_seconds() // 3600)))
        store = await catalog.update_store(store, {"closes_at": closes_at}, self._bus)
        if closes_at is not None:
            await self._move_deadlines(str(store.id), closes_at)
        return store

    async def _move_deadlines(self, store_id: str, closes_at: datetime) -> int:
        """Give every unpaid order of the store due after `closes_at` that closing; how many moved."""
        moved = 0
        for _ in range(MOVE_ROUNDS):
            later = [order for order in await order_store.unpaid_of_store(store_id)
                     if payment_deadline(order.deadline_view(), self._settings.unpaid_timeout) > closes_at]
            if not later:
                break
            now = self._clock.now()
            changed = await order_store.change_many([(order, self._update(order, closes_at, now)) for order in later])
            for order in changed:
                # The version this round expected may also be a concurrent change's: only ours carries the closing.
                if order.payment_due_by is not None and as_utc(order.payment_due_by) == closes_at:
                    await self._publisher.publish(order)
                    moved += 1
        if moved:
            self._enforcer.deadline_scheduled(closes_at)
        return moved

    def _update(self, order: Order, closes_at: datetime, now: datetime) -> dict[str, Any]:
        after = order.model_copy(update={"payment_due_by": closes_at, "updated_at": now})
        changes: dict[str, Any] = {"payment_due_by": closes_at, "updated_at": now, "outbox_at": now,
                                   "next_deadline_at": next_deadline(after.deadline_view(),
                                                                     self._settings.unpaid_timeout)}
        changes.update(change_fields(order, after, order.version + 1, self._settings.zone, now))
        return {"$set": changes, "$inc": {"version": 1}}
