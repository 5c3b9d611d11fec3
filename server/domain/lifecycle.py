"""The order lifecycle: statuses, the transition table and what each move requires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from server.domain.pickup_code import new_nonce


class OrderStatus(StrEnum):
    PLACED = "placed"
    ACCEPTED = "accepted"
    PROCESSING = "processing"
    READY = "ready"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    PENDING = "pending"
    SUCCESS = "success"
    FAILED = "failed"


class CancellationReason(StrEnum):
    PAYMENT_TIMEOUT = "payment_timeout"
    PAYMENT_FAILED = "payment_failed"
    COMMITMENT_TIMEOUT = "commitment_timeout"
    NO_SHOW_TIMEOUT = "no_show_timeout"
    CUSTOMER_CANCELLED = "customer_cancelled"
    STORE_CANCELLED = "store_cancelled"


TERMINAL = frozenset({OrderStatus.PICKED_UP, OrderStatus.CANCELLED})
ACTIVE = frozenset(OrderStatus) - TERMINAL

# Moves a store may request through `PATCH /api/orders/{id}/status`. Entering `picked_up`
# happens only through a verified OTP; `cancelled` is allowed from any non-terminal state.
STORE_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PLACED: frozenset({OrderStatus.ACCEPTED, OrderStatus.CANCELLED}),
    OrderStatus.ACCEPTED: frozenset({OrderStatus.PROCESSING, OrderStatus.CANCELLED}),
    OrderStatus.PROCESSING: frozenset({OrderStatus.READY, OrderStatus.CANCELLED}),
    OrderStatus.READY: frozenset({OrderStatus.CANCELLED}),
    OrderStatus.PICKED_UP: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

def can_store_move(current: OrderStatus, target: OrderStatus) -> bool:
    return target in STORE_TRANSITIONS[current]


# CampusBite's counter flow: a store may accept, prepare and ready an order whose UPI payment it
# has not verified yet, and confirm the payment when the customer is at the counter. The guard:
# payment stays open while the order is active, and nothing is handed over unpaid.
def payment_open(current: OrderStatus) -> bool:
    """Whether the store may still record the payment (success or failure)."""
    return current not in TERMINAL


def may_hand_over(payment: PaymentStatus) -> bool:
    """An order is picked up only once its payment is verified, by code or by hand."""
    return payment == PaymentStatus.SUCCESS


class PickupMethod(StrEnum):
    CODE = "code"  # the customer's pickup code was checked
    MANUAL = "manual"  # staff confirmed the pickup without the code (the customer's phone died)


def needs_commitment(requires_commitment: bool, is_confirmed: bool) -> bool:
    return requires_commitment and not is_confirmed


# A ready order bumped by mistake goes back to preparing, but only for a short while after it was
# marked ready: later the customer may already be at the counter, and staff should talk to them.
READY_UNDO_FROM = OrderStatus.READY
READY_UNDO_TO = OrderStatus.PROCESSING


def ready_undo_refusal(current: OrderStatus, seconds_since_ready: float | None, window_seconds: float) -> str | None:
    """Why a ready order may not be put back to preparing now: "status" (it is not ready), "expired"
    (the window is over); None when it may."""
    if current != READY_UNDO_FROM or seconds_since_ready is None:
        return "status"
    if seconds_since_ready > window_seconds:
        return "expired"
    return None


# Items on an order may be struck while the kitchen works on it (placed orders included: a
# counter may start a paid order's drinks before accepting it).
def items_markable(current: OrderStatus) -> bool:
    return current in (OrderStatus.PLACED, OrderStatus.ACCEPTED, OrderStatus.PROCESSING)


# What entering each status records, besides the status itself: the moment, under this field.
ENTERED_AT: dict[OrderStatus, str] = {
    OrderStatus.ACCEPTED: "accepted_at",
    OrderStatus.PROCESSING: "preparing_at",
    OrderStatus.READY: "ready_at",
    OrderStatus.PICKED_UP: "picked_up_at",
    OrderStatus.CANCELLED: "cancelled_at",
}
# Cancellations that fail the payment, and those that count as the customer's no-show.
FAILS_PAYMENT = frozenset({CancellationReason.PAYMENT_TIMEOUT, CancellationReason.PAYMENT_FAILED})
RECORDS_NO_SHOW = frozenset({CancellationReason.COMMITMENT_TIMEOUT, CancellationReason.NO_SHOW_TIMEOUT})
# What a ready order loses when it is put back to preparing: a new ready makes them anew.
_READY_STATE = {"ready_at": None, "ready_expires_at": None, "otp_nonce": None, "otp_failed_attempts": 0,
                "otp_locked_until": None}


@dataclass(frozen=True)
class Actor:
    """Who made a move, as the order records it."""

    user_id: str
    name: str


def transition(current: OrderStatus, to: OrderStatus, at: datetime, *, ready_timeout: timedelta = timedelta(0),
               reason: CancellationReason | None = None, note: str | None = None,
               pickup: PickupMethod | None = None, by: Actor | None = None) -> dict[str, Any]:
    """The field changes of moving an order from `current` to `to` at `at` (None: remove the field).

    Which moves are allowed, and with which refusal, is each use case's check; this says only what
    a move writes. `reason` and `note` say why a cancellation happened, `pickup` and `by` how and by
    whom an order was handed over, `ready_timeout` how long a ready order waits for its customer.
    """
    if current == READY_UNDO_FROM and to == READY_UNDO_TO:
        return {"order_status": to, **_READY_STATE}
    changes: dict[str, Any] = {"order_status": to, ENTERED_AT[to]: at}
    if to == OrderStatus.READY:
        changes.update(ready_expires_at=at + ready_timeout, otp_nonce=new_nonce(), otp_failed_attempts=0)
    elif to == OrderStatus.CANCELLED:
        changes["cancellation_reason"] = reason
        if note is not None:
            changes["cancellation_note"] = note
        if reason in FAILS_PAYMENT:
            changes["payment_status"] = PaymentStatus.FAILED
        if reason in RECORDS_NO_SHOW:
            changes["no_show_at"] = at
    elif to == OrderStatus.PICKED_UP:
        if pickup == PickupMethod.CODE:
            changes.update(is_otp_verified=True, otp_failed_attempts=0, otp_locked_until=None)
        changes["pickup_method"] = pickup
        if by is not None:
            changes.update(picked_up_by=by.user_id, picked_up_by_name=by.name)
    return changes
