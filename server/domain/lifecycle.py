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
