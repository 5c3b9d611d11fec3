"""Which deadline an order is waiting on, and what happens when it passes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from server.domain.lifecycle import FAILS_PAYMENT, RECORDS_NO_SHOW, CancellationReason, OrderStatus, PaymentStatus


@dataclass(frozen=True)
class DeadlineView:
    """The fields of an order that its deadlines depend on."""

    order_status: OrderStatus
    payment_status: PaymentStatus
    created_at: datetime
    requires_commitment: bool
    is_commitment_confirmed: bool
    commitment_deadline_at: datetime | None
    ready_expires_at: datetime | None
    is_otp_verified: bool
    # The store's closing time for payments, when it was set while the order was unpaid: the
    # payment is due by then even if its own timeout runs later.
    payment_due_by: datetime | None = None


@dataclass(frozen=True)
class DueDeadline:
    reason: CancellationReason

    @property
    def records_no_show(self) -> bool:
        return self.reason in RECORDS_NO_SHOW

    @property
    def fails_payment(self) -> bool:
        return self.reason in FAILS_PAYMENT


def pending_deadlines(order: DeadlineView, unpaid_timeout: timedelta) -> list[tuple[datetime, DueDeadline]]:
    """Every deadline the order is still subject to, earliest first."""
    found: list[tuple[datetime, DueDeadline]] = []
    if order.order_status == OrderStatus.PLACED:
        if order.requires_commitment and not order.is_commitment_confirmed and order.commitment_deadline_at:
            found.append((order.commitment_deadline_at,
                          DueDeadline(CancellationReason.COMMITMENT_TIMEOUT)))
        if order.payment_status == PaymentStatus.PENDING:
            found.append((payment_deadline(order, unpaid_timeout), DueDeadline(CancellationReason.PAYMENT_TIMEOUT)))
    elif order.order_status == OrderStatus.READY and not order.is_otp_verified and order.ready_expires_at:
        found.append((order.ready_expires_at, DueDeadline(CancellationReason.NO_SHOW_TIMEOUT)))
    found.sort(key=lambda pair: pair[0])
    return found


def payment_deadline(order: DeadlineView, unpaid_timeout: timedelta) -> datetime:
    """When an unpaid order is cancelled: its timeout, or the store's closing when that comes first."""
    own = order.created_at + unpaid_timeout
    return own if order.payment_due_by is None else min(own, order.payment_due_by)


def next_deadline(order: DeadlineView, unpaid_timeout: timedelta) -> datetime | None:
    pending = pending_deadlines(order, unpaid_timeout)
    return pending[0][0] if pending else None


def due_deadline(order: DeadlineView, unpaid_timeout: timedelta, now: datetime) -> DueDeadline | None:
    """The deadline that has passed, if any (the earliest one wins)."""
    for when, deadline in pending_deadlines(order, unpaid_timeout):
        if when <= now:
            return deadline
    return None
