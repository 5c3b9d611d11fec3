"""What each move of an order writes (server/domain/lifecycle.py `transition`), without a database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from server.domain.lifecycle import (
    ENTERED_AT, STORE_TRANSITIONS, Actor, CancellationReason, OrderStatus, PaymentStatus, PickupMethod, transition,
)

AT = datetime(2024, 3, 18, 14, 30, tzinfo=timezone.utc)
STAFF = Actor("u1", "Asha")


@pytest.mark.parametrize(("current", "to"), [(current, to) for current, targets in STORE_TRANSITIONS.items()
                                             for to in sorted(targets)])  # one order in every worker
def test_every_store_move_records_the_status_and_when_it_was_entered(current, to):
    changes = transition(current, to, AT, reason=CancellationReason.STORE_CANCELLED)
    assert changes["order_status"] == to and changes[ENTERED_AT[to]] == AT


def test_accepting_and_preparing_record_only_the_moment():
    assert transition(OrderStatus.PLACED, OrderStatus.ACCEPTED, AT) == {"order_status": "accepted", "accepted_at": AT}
    assert transition(OrderStatus.ACCEPTED, OrderStatus.PROCESSING, AT) == {
        "order_status": "processing", "preparing_at": AT}


def test_ready_starts_the_pickup_window_with_a_fresh_code():
    first = transition(OrderStatus.PROCESSING, OrderStatus.READY, AT, ready_timeout=timedelta(minutes=20))
    second = transition(OrderStatus.PROCESSING, OrderStatus.READY, AT, ready_timeout=timedelta(minutes=20))
    assert first["ready_at"] == AT and first["ready_expires_at"] == AT + timedelta(minutes=20)
    assert first["otp_failed_attempts"] == 0 and first["otp_nonce"] != second["otp_nonce"]


def test_putting_a_ready_order_back_forgets_its_ready_state():
    assert transition(OrderStatus.READY, OrderStatus.PROCESSING, AT) == {
        "order_status": "processing", "ready_at": None, "ready_expires_at": None, "otp_nonce": None,
        "otp_failed_attempts": 0, "otp_locked_until": None}


@pytest.mark.parametrize(("reason", "payment_failed", "no_show"), [
    (CancellationReason.PAYMENT_TIMEOUT, True, False),
    (CancellationReason.PAYMENT_FAILED, True, False),
    (CancellationReason.COMMITMENT_TIMEOUT, False, True),
    (CancellationReason.NO_SHOW_TIMEOUT, False, True),
    (CancellationReason.CUSTOMER_CANCELLED, False, False),
    (CancellationReason.STORE_CANCELLED, False, False),
])
def test_a_cancellation_fails_the_payment_or_records_a_no_show_by_its_reason(reason, payment_failed, no_show):
    changes = transition(OrderStatus.PLACED, OrderStatus.CANCELLED, AT, reason=reason)
    assert changes["cancellation_reason"] == reason and changes["cancelled_at"] == AT
    assert (changes.get("payment_status") == PaymentStatus.FAILED) == payment_failed
    assert (changes.get("no_show_at") == AT) == no_show
    assert "cancellation_note" not in changes


def test_a_store_cancellation_keeps_its_note():
    changes = transition(OrderStatus.ACCEPTED, OrderStatus.CANCELLED, AT, reason=CancellationReason.STORE_CANCELLED,
                         note="out of milk")
    assert changes["cancellation_note"] == "out of milk"


def test_a_pickup_with_the_code_verifies_it_and_ends_any_lock():
    assert transition(OrderStatus.READY, OrderStatus.PICKED_UP, AT, pickup=PickupMethod.CODE, by=STAFF) == {
        "order_status": "picked_up", "picked_up_at": AT, "is_otp_verified": True, "otp_failed_attempts": 0,
        "otp_locked_until": None, "pickup_method": "code", "picked_up_by": "u1", "picked_up_by_name": "Asha"}


def test_a_pickup_by_hand_is_recorded_with_who_but_verifies_no_code():
    assert transition(OrderStatus.READY, OrderStatus.PICKED_UP, AT, pickup=PickupMethod.MANUAL, by=STAFF) == {
        "order_status": "picked_up", "picked_up_at": AT, "pickup_method": "manual", "picked_up_by": "u1",
        "picked_up_by_name": "Asha"}
