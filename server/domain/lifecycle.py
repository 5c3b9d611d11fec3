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


def needs_commitment(requires_commitment: bool, is_confirmed: bool) -> bool:
    return requires_commitment and not is_confirmed
