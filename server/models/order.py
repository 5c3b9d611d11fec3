from __future__ import annotations

from datetime import datetime, timezone

from server.models.base import UtcDocument
from pydantic import BaseModel, field_validator

from server.domain.deadlines import DeadlineView
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus


class OrderItem(BaseModel):
    menu_item_id: str
    name: str
    price_paise: int
    quantity: int
    total_paise: int


class ReadyUndo(BaseModel):
    """A ready order put back to preparing: when, by whom, and when it had been marked ready."""

    at: datetime
    by: str
    by_name: str
    ready_at: datetime | None = None

    @field_validator("at", "ready_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        """nx-27017 gives back sub-document datetimes naive, as it does top-level ones (UtcDocument)."""
        return value.replace(tzinfo=timezone.utc) if value is not None and value.tzinfo is None else value


class PendingWebhookEvent(BaseModel):
    """One change's webhook event, as the change wrote it: the body is the state at `version`."""

    version: int
    type: str
    payload: str


class Order(UtcDocument):
    """One order. Every change is a compare-and-set that bumps `version` and sets `outbox_at`.

    `next_deadline_at` is the earliest deadline still pending (absent when none) and
    `outbox_at` marks a change not yet confirmed as published; both are absent rather than
    null so that range queries behave the same on MongoDB and nx-27017.
    """

    order_number: str
    user_id: str  # references are hex strings, matched the same way by MongoDB and nx-27017
    store_id: str
    store_name: str
    store_location: str
    customer_first_name: str
    items: list[OrderItem]
    total_paise: int
    special_instructions: str | None = None
    payment_reference: str
    payment_method: str = "direct_store_upi"
    transaction_id: str | None = None
    checkout_id: str
    payment_status: PaymentStatus = PaymentStatus.PENDING
    order_status: OrderStatus = OrderStatus.PLACED
    requires_commitment: bool = False
    is_commitment_confirmed: bool = False
    commitment_confirmed_at: datetime | None = None
    commitment_deadline_at: datetime | None = None
    paid_at: datetime | None = None
    accepted_at: datetime | None = None
    preparing_at: datetime | None = None  # when the store started preparing (processing)
    ready_at: datetime | None = None
    ready_expires_at: datetime | None = None
    otp_nonce: str | None = None
    otp_failed_attempts: int = 0
    otp_locked_until: datetime | None = None
    is_otp_verified: bool = False
    picked_up_at: datetime | None = None
    # "code" (the customer's code was checked) or "manual" (staff confirmed without it), and by whom.
    pickup_method: str | None = None
    picked_up_by: str | None = None
    picked_up_by_name: str | None = None
    cancelled_at: datetime | None = None
    cancellation_reason: CancellationReason | None = None
    cancellation_note: str | None = None
    no_show_at: datetime | None = None
    # An admin cleared a wrongly recorded no-show: `no_show_at` moves here, with who and why.
    no_show_cleared_at: datetime | None = None
    no_show_cleared_by: str | None = None
    no_show_cleared_by_name: str | None = None
    no_show_cleared_reason: str | None = None
    no_show_recorded_at: datetime | None = None
    # The kitchen display (issue 27): indexes of the items struck as done, and every undone ready.
    item_marks: list[int] | None = None
    ready_undos: list[ReadyUndo] | None = None
    # Order caps (server/services/slots.py): the 15-minute slot this order was counted in and how
    # many items it weighs there; `slot_held` while it still occupies that slot (cleared, and the
    # slot's count given back, once it is ready or cancelled); `slot_deferred` when the slot it was
    # placed in was a later one than the slot of its placing (the cap was hit).
    slot_start: datetime | None = None
    slot_weight: int | None = None
    slot_held: bool | None = None
    slot_deferred: bool = False
    version: int = 1
    created_at: datetime
    updated_at: datetime
    next_deadline_at: datetime | None = None
    # The store's closing time for payments, set while this order was unpaid: its payment is due by
    # then at the latest (server/services/store_closing.py); absent: its own timeout alone.
    payment_due_by: datetime | None = None
    outbox_at: datetime | None = None
    # The deadline pass that cancelled this order, until that pass has published it: with many
    # enforcers racing, it tells each pass exactly the orders it won (server/services/deadlines.py).
    deadline_batch: str | None = None
    # Partner webhooks (server/services/webhooks.py): the `/v1` client that created the order, and
    # the events of its changes not yet turned into deliveries, written in the change's own update.
    partner_client_id: str | None = None
    webhook_events: list[PendingWebhookEvent] | None = None
    # A deadline cancelled it (the reason): its event is built from the order, final from then on.
    webhook_deadline: str | None = None
    webhook_pending_at: datetime | None = None

    class Settings:
        # Its indexes are declared beside the queries they serve (server/services/order_store.py).
        name = "orders"
        keep_nulls = False

    def deadline_view(self) -> DeadlineView:
        return DeadlineView(
            order_status=self.order_status,
            payment_status=self.payment_status,
            created_at=self.created_at,
            requires_commitment=self.requires_commitment,
            is_commitment_confirmed=self.is_commitment_confirmed,
            commitment_deadline_at=self.commitment_deadline_at,
            ready_expires_at=self.ready_expires_at,
            is_otp_verified=self.is_otp_verified,
            payment_due_by=self.payment_due_by,
        )
