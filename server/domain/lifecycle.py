"""The order lifecycle: statuses, the transition table and what each move requires."""

from __future__ import annotations

from enum import StrEnum


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
