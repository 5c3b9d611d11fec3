"""Changing an order: payment, the store's moves, pickup with the code, the customer's cancel and
commitment.

Each change is one compare-and-set on the order's `version` (so a lost race is a Conflict, never a
silent overwrite), then exactly one published event.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from server import metrics
from server.config import Settings
from server.domain import messages
from server.domain.access import Principal
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.deadlines import next_deadline
from server.domain.errors import Conflict, Forbidden, Invalid, InvalidTransition, OrderPulseError, RateLimited
from server.domain.lifecycle import (
    READY_UNDO_TO, Actor, CancellationReason, OrderStatus, PaymentStatus, PickupMethod, TERMINAL, can_store_move,
    items_markable, may_hand_over, needs_commitment, payment_open, ready_undo_refusal, transition,
)
from server.domain.pickup_code import codes_match
from server.domain.upi import normalise_transaction_id
from server.models import Order
from server.models.order import ReadyUndo
from server.services import order_store
from server.services.deadlines import DeadlineEnforcer
from server.services.order_queries import OrderQueries
from server.services.publishing import ChangePublisher
from server.services.webhooks import change_fields

# Orders a kitchen can recall: those that left its board, newest first.
RECALL_SIZE = 20
_LEFT_BOARD = [OrderStatus.READY.value, OrderStatus.PICKED_UP.value, OrderStatus.CANCELLED.value]
# A mark lost to a concurrent change of the same order is applied again to the order as it now is.
MARK_ATTEMPTS = 5

_FORWARD = [OrderStatus.PLACED, OrderStatus.ACCEPTED, OrderStatus.PROCESSING, OrderStatus.READY,
            OrderStatus.PICKED_UP]


T = TypeVar("T")
_WRITTEN, _RETRIED = metrics.WRITTEN_COPY.labels("written"), metrics.WRITTEN_COPY.labels("retried")


def _mongo(value: Any) -> Any:
    return value.value if isinstance(value, Enum) else value


def _actor(principal: Principal) -> Actor:
    return Actor(principal.user_id, principal.name)


class OrderLifecycle:
    def __init__(self, settings: Settings, queries: OrderQueries, publisher: ChangePublisher,
                 enforcer: DeadlineEnforcer, clock: Clock = SYSTEM_CLOCK) -> None:
        self._settings = settings
        self._queries = queries
        self._publisher = publisher
        self._enforcer = enforcer
        self._clock = clock

    async def _commit(self, order: Order, changes: dict[str, Any]) -> Order:
        """Compare-and-set on `version`, then publish exactly one event. A UPI transaction id it
        writes is claimed first, across every store, and given back if the write does not happen."""
        now = self._clock.now()
        changes = {**changes, "updated_at": now}
        after = order.model_copy(update=changes)
        deadline = next_deadline(after.deadline_view(), self._settings.unpaid_timeout)
        set_doc = {key: _mongo(value) for key, value in changes.items() if value is not None}
        set_doc["outbox_at"] = now
        # A partner's order also carries this change's webhook event, in the same update.
        set_doc.update(change_fields(order, after, order.version + 1, self._settings.zone, now))
        unset_doc = {key: "" for key, value in changes.items() if value is None}
        if deadline is None:
            unset_doc["next_deadline_at"] = ""
        else:
            set_doc["next_deadline_at"] = deadline
        update: dict[str, Any] = {"$set": set_doc, "$inc": {"version": 1}}
        if unset_doc:
            update["$unset"] = unset_doc
        transaction: str = changes.get("transaction_id") or ""
        claim = await order_store.claim_transaction(transaction, order, now) if transaction else None
        if claim == "taken":
            raise Conflict(messages.TRANSACTION_ID_TAKEN)
        from_copy = self._queries.written.holds(order)
        try:
            updated = await order_store.change(order, update, confirm_miss=not from_copy)
        except BaseException:
            if claim == "claimed":
                await order_store.release_transaction(transaction, order)
            raise
        if updated is None:
            if claim == "claimed":
                await order_store.release_transaction(transaction, order)
            # From the process's copy, a miss means the copy was stale: `_from_copy` reads and
            # tries again, so the read that tells a refused write from a lost race is not made.
            raise Conflict(messages.STATUS_CONFLICT)
        self._queries.written.keep(updated)
        if transaction and order.transaction_id and order.transaction_id != transaction:
            # The payment replaced the transaction id given at checkout: that one is free again.
            await order_store.release_transaction(order.transaction_id, updated)
        await self._publisher.publish(updated)
        if deadline is not None:
            self._enforcer.deadline_scheduled(deadline)
        return updated

    async def _from_copy(self, principal: Principal, order_id: str, change: Callable[[Order], Awaitable[T]]) -> T:
        """`change` made from the order as this process last wrote it, when it holds that copy
        (`WrittenOrders`): a kitchen moving its own orders along saves one read per move. If that
        attempt is refused in any way (the copy was stale, so its compare-and-set missed, or its
        state explains a refusal), the change is made again on the order as read now, which
        decides. Only for changes whose every success is a compare-and-set (so a stale copy can
        never produce an answer) and that write nothing before it (a claimed transaction id is
        given back when it misses)."""
        copy = self._queries.written_copy(principal, order_id)
        if copy is not None:
            try:
                changed = await change(copy)
            except OrderPulseError:
                _RETRIED.inc()
                self._queries.written.forget(order_id)
            else:
                _WRITTEN.inc()
                return changed
        return await change(await self._queries.visible_order(principal, order_id))

    async def update_payment(self, principal: Principal, order_id: str, payment_status: str,
                             transaction_id: object) -> tuple[Order, str]:
        return await self._from_copy(principal, order_id,
                                     lambda order: self._pay(order, payment_status, transaction_id))

    async def _pay(self, order: Order, payment_status: str, transaction_id: object) -> tuple[Order, str]:
        transaction = normalise_transaction_id(transaction_id)
        if order.payment_status != PaymentStatus.PENDING:
            raise Conflict(messages.PAYMENT_ALREADY_FINAL.format(status=order.payment_status.value))
        if not payment_open(order.order_status):
            raise Conflict(messages.PAYMENT_NOT_OPEN)
        now = self._clock.now()
        if payment_status == PaymentStatus.FAILED:
            failed = transition(order.order_status, OrderStatus.CANCELLED, now,
                                reason=CancellationReason.PAYMENT_FAILED)
            return await self._commit(order, failed), messages.PAYMENT_FAILED_CANCELLED
        changes: dict[str, Any] = {"payment_status": PaymentStatus.SUCCESS, "paid_at": now}
        if transaction:
            changes["transaction_id"] = transaction  # claimed by `_commit`
        if order.order_status != OrderStatus.PLACED:
            # Accepted before payment (the counter flow): verifying it changes nothing else.
            return await self._commit(order, changes), messages.PAYMENT_UPDATED
        if needs_commitment(order.requires_commitment, order.is_commitment_confirmed):
            return await self._commit(order, changes), messages.PAYMENT_WAITING_COMMITMENT
        changes.update(transition(order.order_status, OrderStatus.ACCEPTED, now))
        return await self._commit(order, changes), messages.PAYMENT_UPDATED

    async def update_status(self, principal: Principal, order_id: str, target: OrderStatus,
                            note: str | None) -> Order:
        return await self._from_copy(principal, order_id, lambda order: self._move(order, target, note))

    async def _move(self, order: Order, target: OrderStatus, note: str | None) -> Order:
        current = order.order_status
        if target == OrderStatus.PICKED_UP:
            raise InvalidTransition(messages.PICKUP_NEEDS_OTP)
        if not can_store_move(current, target):
            # A target at or behind the current state means the caller's view is stale.
            stale = current in TERMINAL or (
                target in _FORWARD and _FORWARD.index(target) <= _FORWARD.index(current))
            if stale:
                raise Conflict(messages.STATUS_CONFLICT)
            raise InvalidTransition(messages.INVALID_TRANSITION.format(current=current.value, target=target.value))
        now = self._clock.now()
        if target == OrderStatus.ACCEPTED:
            # An unpaid order may be accepted (CampusBite's counter flow); `may_hand_over` guards pickup.
            if needs_commitment(order.requires_commitment, order.is_commitment_confirmed):
                raise InvalidTransition(messages.ACCEPT_NEEDS_COMMITMENT)
        return await self._commit(order, transition(current, target, now, ready_timeout=self._settings.ready_timeout,
                                                    reason=CancellationReason.STORE_CANCELLED, note=note))

    async def verify_otp(self, principal: Principal, order_id: str, otp: str | None) -> Order:
        """Hand the order over: with the customer's code, or (`otp` None) confirmed by staff by hand."""
        order = await self._queries.visible_order(principal, order_id)
        now = self._clock.now()
        if otp is None:
            return await self._manual_pickup(principal, order, now)
        if order.otp_locked_until is not None and as_utc(order.otp_locked_until) > now:
            raise self._otp_locked(as_utc(order.otp_locked_until), now)
        expected = self._queries.pickup_otp(order)
        if order.order_status != OrderStatus.READY or expected is None:
            raise Invalid(messages.OTP_INVALID)
        if not may_hand_over(order.payment_status):
            raise InvalidTransition(messages.PICKUP_NEEDS_PAYMENT)
        await self._claim_otp_attempt(order, now)
        if not codes_match(expected, otp):
            raise Invalid(messages.OTP_INVALID)
        updated = await self._commit(order, transition(order.order_status, OrderStatus.PICKED_UP, now,
                                                       pickup=PickupMethod.CODE, by=_actor(principal)))
        metrics.PICKUPS.labels(PickupMethod.CODE.value).inc()
        return updated

    async def _manual_pickup(self, principal: Principal, order: Order, now: datetime) -> Order:
        """Staff hand the order over without the code: recorded with who and when, counted apart.
        `isOtpVerified` stays false, since no code was checked."""
        if order.order_status in TERMINAL:
            raise Conflict(messages.STATUS_CONFLICT)
        if order.order_status != OrderStatus.READY:
            raise InvalidTransition(messages.PICKUP_NOT_READY)
        if not may_hand_over(order.payment_status):
            raise InvalidTransition(messages.PICKUP_NEEDS_PAYMENT)
        updated = await self._commit(order, transition(order.order_status, OrderStatus.PICKED_UP, now,
                                                       pickup=PickupMethod.MANUAL, by=_actor(principal)))
        metrics.PICKUPS.labels(PickupMethod.MANUAL.value).inc()
        return updated

    async def _claim_otp_attempt(self, order: Order, now: datetime) -> None:
        """Count one attempt before any code is compared; RateLimited when the window's attempts are spent.

        Each claim is one atomic update whose filter is the limit, so however many requests
        arrive at once on however many processes, at most `otp_max_attempts` get to compare;
        the claim that takes the last attempt sets the lock in the same update. A right code
        resets the count (in `verify_otp`'s commit); a wrong one leaves it counted.
        """
        lock_until = now + timedelta(seconds=self._settings.otp_lockout_seconds)
        locked = await order_store.claim_otp_attempt(order, self._settings.otp_max_attempts, lock_until, now)
        if locked is not None:
            raise self._otp_locked(locked, now)

    def _otp_locked(self, until: datetime, now: datetime) -> RateLimited:
        wait = max(1, int((until - now).total_seconds() + 0.999))
        return RateLimited(messages.OTP_LOCKED.format(seconds=wait), retry_after=wait)

    async def cancel_by_customer(self, principal: Principal, order_id: str) -> Order:
        order = await self._queries.visible_order(principal, order_id)
        if order.order_status != OrderStatus.PLACED or order.payment_status != PaymentStatus.PENDING:
            raise Conflict(messages.CANCEL_NOT_ALLOWED)
        return await self._commit(order, transition(order.order_status, OrderStatus.CANCELLED, self._clock.now(),
                                                    reason=CancellationReason.CUSTOMER_CANCELLED))

    async def confirm_commitment(self, principal: Principal, order_id: str) -> Order:
        order = await self._queries.find(order_id)
        if str(order.user_id) != principal.user_id:
            raise Forbidden(messages.COMMITMENT_FORBIDDEN)
        order = await self._queries.enforce_own_deadline(order)
        if order.cancellation_reason == CancellationReason.COMMITMENT_TIMEOUT:
            raise InvalidTransition(messages.COMMITMENT_EXPIRED)
        if not order.requires_commitment:
            raise InvalidTransition(messages.COMMITMENT_NOT_REQUIRED)
        if order.is_commitment_confirmed:
            raise InvalidTransition(messages.COMMITMENT_ALREADY)
        if order.order_status != OrderStatus.PLACED:
            raise InvalidTransition(messages.COMMITMENT_NOT_OPEN)
        now = self._clock.now()
        changes: dict[str, Any] = {"is_commitment_confirmed": True, "commitment_confirmed_at": now}
        if order.payment_status == PaymentStatus.SUCCESS:
            # Payment was verified while we waited for the customer: the order can go ahead.
            changes.update(transition(order.order_status, OrderStatus.ACCEPTED, now))
        return await self._commit(order, changes)

    async def mark_item(self, principal: Principal, order_id: str, index: int, marked: bool) -> Order:
        """Strike (or unstrike) one item of an order, as one ordinary change of the order.

        Marks on different items of one order from several screens all land: a compare-and-set
        lost to another change is retried on the order as it now is (a mark is a set operation).
        """
        for _ in range(MARK_ATTEMPTS):
            order = await self._queries.visible_order(principal, order_id)
            if not 0 <= index < len(order.items):
                raise Invalid(messages.ITEM_INDEX_INVALID.format(index=index))
            if not items_markable(order.order_status):
                raise Conflict(messages.ITEM_MARK_CLOSED)
            marks = set(order.item_marks or ())
            if (index in marks) == marked:
                return order  # already so: no change, no event
            marks = marks | {index} if marked else marks - {index}
            try:
                return await self._commit(order, {"item_marks": sorted(marks)})
            except Conflict as exc:
                if exc.message != messages.STATUS_CONFLICT:
                    raise
        raise Conflict(messages.STATUS_CONFLICT)

    async def undo_ready(self, principal: Principal, order_id: str) -> Order:
        """Put an order marked ready by mistake back to preparing, within `READY_UNDO_SECONDS`.

        Its pickup code and no-show deadline go (a new ready makes new ones), the undo is kept on
        the order with who and when, and the change is published like any other, so the customer's
        page and the store's screens follow, and the customer's devices hear it is not ready after all.
        """
        order = await self._queries.visible_order(principal, order_id)
        now = self._clock.now()
        since = (now - as_utc(order.ready_at)).total_seconds() if order.ready_at else None
        refusal = ready_undo_refusal(order.order_status, since, self._settings.ready_undo_seconds)
        if refusal == "status":
            raise Conflict(messages.READY_UNDO_NOT_READY.format(status=order.order_status.value.replace("_", " ")))
        if refusal == "expired":
            raise Conflict(messages.READY_UNDO_EXPIRED.format(
                order_number=order.order_number, seconds=f"{self._settings.ready_undo_seconds:g}"))
        undo = ReadyUndo(at=now, by=principal.user_id, by_name=principal.name, ready_at=order.ready_at)
        undos = [*(order.ready_undos or ()), undo]
        return await self._commit(order, {**transition(order.order_status, READY_UNDO_TO, now),
                                          "ready_undos": [entry.model_dump() for entry in undos]})

    async def recall(self, principal: Principal, store_id: str) -> list[Order]:
        """The last `RECALL_SIZE` orders that left the store's board (readied, picked up or
        cancelled), the most recently changed first."""
        return await order_store.recall(store_id, _LEFT_BOARD, RECALL_SIZE)
