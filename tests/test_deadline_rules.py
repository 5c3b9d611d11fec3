"""Deadline kinds without a server: when each falls due, which one wins, and what it records
(server/domain/deadlines.py, and the enforcer's query side in server/services/deadlines.py)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from server.domain.deadlines import DeadlineView, due_deadline, next_deadline, pending_deadlines
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus
from server.services.deadlines import _deadline_view, state_filter

T0 = datetime(2024, 3, 18, 14, 30, tzinfo=timezone.utc)
UNPAID = timedelta(minutes=8)
COMMITMENT = timedelta(minutes=4)
READY = timedelta(minutes=20)
MS = timedelta(milliseconds=1)


def placed(**changes) -> DeadlineView:
    fields = dict(order_status=OrderStatus.PLACED, payment_status=PaymentStatus.PENDING, created_at=T0,
                  requires_commitment=False, is_commitment_confirmed=False, commitment_deadline_at=None,
                  ready_expires_at=None, is_otp_verified=False)
    fields.update(changes)
    return DeadlineView(**fields)


def watch_tier(**changes) -> DeadlineView:
    return placed(**{"requires_commitment": True, "commitment_deadline_at": T0 + COMMITMENT, **changes})


def ready(**changes) -> DeadlineView:
    return placed(order_status=OrderStatus.READY, payment_status=PaymentStatus.SUCCESS,
                  ready_expires_at=T0 + READY, **changes)


@pytest.mark.parametrize(("order", "due_at", "reason", "no_show", "fails_payment"), [
    (placed(), T0 + UNPAID, CancellationReason.PAYMENT_TIMEOUT, False, True),
    (watch_tier(), T0 + COMMITMENT, CancellationReason.COMMITMENT_TIMEOUT, True, False),
    (ready(), T0 + READY, CancellationReason.NO_SHOW_TIMEOUT, True, False),
], ids=["payment", "commitment", "no-show"])
def test_each_kind_falls_due_at_its_moment_and_not_a_millisecond_before(order, due_at, reason, no_show,
                                                                      fails_payment):
    assert next_deadline(order, UNPAID) == due_at
    assert due_deadline(order, UNPAID, due_at - MS) is None
    due = due_deadline(order, UNPAID, due_at)
    assert due is not None
    assert (due.reason, due.records_no_show, due.fails_payment) == (reason, no_show, fails_payment)


def test_a_watch_tier_order_waits_on_both_clocks_and_the_earlier_wins():
    pending = pending_deadlines(watch_tier(), UNPAID)
    assert [(when, due.reason) for when, due in pending] == [
        (T0 + COMMITMENT, CancellationReason.COMMITMENT_TIMEOUT), (T0 + UNPAID, CancellationReason.PAYMENT_TIMEOUT)]
    # Long past both, the earlier one is still the one that applies.
    assert due_deadline(watch_tier(), UNPAID, T0 + timedelta(hours=1)).reason == CancellationReason.COMMITMENT_TIMEOUT
    # With a commitment window longer than the payment one, payment comes first.
    late_window = watch_tier(commitment_deadline_at=T0 + timedelta(minutes=10))
    assert due_deadline(late_window, UNPAID, T0 + timedelta(minutes=11)).reason == CancellationReason.PAYMENT_TIMEOUT


@pytest.mark.parametrize(("order", "left"), [
    (watch_tier(is_commitment_confirmed=True), T0 + UNPAID),  # confirmed: only the payment clock runs
    (watch_tier(payment_status=PaymentStatus.SUCCESS), T0 + COMMITMENT),  # paid: only the commitment one
    (placed(payment_status=PaymentStatus.SUCCESS), None),
    (ready(is_otp_verified=True), None),
    (placed(order_status=OrderStatus.ACCEPTED, payment_status=PaymentStatus.SUCCESS), None),
    (placed(order_status=OrderStatus.PROCESSING, payment_status=PaymentStatus.SUCCESS), None),
    (placed(order_status=OrderStatus.CANCELLED, payment_status=PaymentStatus.FAILED), None),
    (placed(order_status=OrderStatus.PICKED_UP, payment_status=PaymentStatus.SUCCESS), None),
], ids=["confirmed", "paid-watch", "paid", "otp-verified", "accepted", "processing", "cancelled", "picked-up"])
def test_what_stops_a_clock(order, left):
    assert next_deadline(order, UNPAID) == left
    assert (due_deadline(order, UNPAID, T0 + timedelta(days=1)) is None) == (left is None)


@pytest.mark.parametrize(("reason", "order"), [
    (CancellationReason.PAYMENT_TIMEOUT, placed()),
    (CancellationReason.PAYMENT_TIMEOUT, placed(payment_due_by=T0 + MS)),
    (CancellationReason.COMMITMENT_TIMEOUT, watch_tier()),
    (CancellationReason.NO_SHOW_TIMEOUT, ready()),
], ids=["payment", "payment-closing", "commitment", "no-show"])
def test_the_enforcers_query_side_agrees_with_the_rule(reason, order):
    """The enforcer reads stored documents, not views: the same deadline from the stored fields, and
    its claim's filter is the order's state as the rule requires it."""
    document = {"order_status": order.order_status.value, "payment_status": order.payment_status.value,
                "created_at": order.created_at, "requires_commitment": order.requires_commitment,
                "is_commitment_confirmed": order.is_commitment_confirmed,
                "commitment_deadline_at": order.commitment_deadline_at, "ready_expires_at": order.ready_expires_at,
                "is_otp_verified": order.is_otp_verified, "payment_due_by": order.payment_due_by}
    due_at = next_deadline(order, UNPAID)
    assert due_at is not None and next_deadline(_deadline_view(document), UNPAID) == due_at
    assert due_deadline(_deadline_view(document), UNPAID, due_at - MS) is None
    assert due_deadline(_deadline_view(document), UNPAID, due_at).reason == reason
    assert all(document[field] == value for field, value in state_filter(reason).items())


def test_a_stores_closing_brings_the_payment_deadline_forward_never_back():
    assert next_deadline(placed(payment_due_by=T0 + timedelta(minutes=1)), UNPAID) == T0 + timedelta(minutes=1)
    assert next_deadline(placed(payment_due_by=T0 + UNPAID + MS), UNPAID) == T0 + UNPAID
    assert next_deadline(placed(payment_due_by=T0 + MS, payment_status=PaymentStatus.SUCCESS), UNPAID) is None
