"""The shapes clients see of an order, each defined once.

`LEAN_SHAPE` is the seed-000 poll-status body; events and socket snapshots add `storeId` and
`version` to it (`EVENT_SHAPE`), and store subscribers get `kitchen_fields` on top. The OpenAPI
document's `PollStatus` and `OrderEvent` are made from the same two tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import Field, StringConstraints

from server.domain.clock import iso_z, partner_timestamp
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus
from server.domain.money import paise_to_rupees
from server.models import MenuItem, Order, OrderItem, Store, User, WebhookDelivery, WebhookEndpoint

ObjectIdText = Annotated[str, StringConstraints(pattern="^[0-9a-f]{24}$")]
Rupees = Annotated[float, Field(ge=0)]  # whole rupees are sent as integers (`120`), as in seed 001


class ShapeField(NamedTuple):
    """One field of a shape: its JSON name, its type as the document states it, how it is read."""

    name: str
    type: Any
    read: Callable[[Order], Any]


LEAN_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda order: str(order.id)),
    ShapeField("orderNumber", str, lambda order: order.order_number),
    ShapeField("orderStatus", OrderStatus, lambda order: order.order_status.value),
    ShapeField("paymentStatus", PaymentStatus, lambda order: order.payment_status.value),
    ShapeField("totalAmount", Rupees, lambda order: paise_to_rupees(order.total_paise)),
    ShapeField("isCommitmentConfirmed", bool, lambda order: order.is_commitment_confirmed),
    ShapeField("commitmentDeadlineAt", datetime | None, lambda order: iso_z(order.commitment_deadline_at)),
    ShapeField("readyAt", datetime | None, lambda order: iso_z(order.ready_at)),
    ShapeField("readyExpiresAt", datetime | None, lambda order: iso_z(order.ready_expires_at)),
    ShapeField("isOtpVerified", bool, lambda order: order.is_otp_verified),
    ShapeField("cancelledAt", datetime | None, lambda order: iso_z(order.cancelled_at)),
    ShapeField("cancellationReason", CancellationReason | None,
               lambda order: order.cancellation_reason.value if order.cancellation_reason else None),
    ShapeField("updatedAt", datetime, lambda order: iso_z(order.updated_at)),
)
EVENT_SHAPE: tuple[ShapeField, ...] = (
    *LEAN_SHAPE,
    ShapeField("storeId", ObjectIdText, lambda order: str(order.store_id)),
    ShapeField("version", int, lambda order: order.version),
)
LEAN_FIELDS = tuple(field.name for field in LEAN_SHAPE)


def lean_order(order: Order) -> dict[str, Any]:
    """Exactly the 13 fields of seed 000's example, in its order."""
    return {field.name: field.read(order) for field in LEAN_SHAPE}


def event_order(order: Order) -> dict[str, Any]:
    """The `order` object of a real-time event (REALTIME.md): lean shape plus routing."""
    return {field.name: field.read(order) for field in EVENT_SHAPE}


def kitchen_fields(order: Order) -> dict[str, Any]:
    """What a store's kitchen display needs beyond the lean shape; never the OTP."""
    return {
        "items": [{"name": item.name, "quantity": item.quantity} for item in order.items],
        "specialInstructions": order.special_instructions,
        "customerFirstName": order.customer_first_name,
        "requiresCommitment": order.requires_commitment,
        "paymentReference": order.payment_reference,
        "transactionId": order.transaction_id,
        "createdAt": iso_z(order.created_at),
        # Issue 27: struck items, when preparation started (the colour timers), undone readies.
        "itemMarks": list(order.item_marks or ()),
        "acceptedAt": iso_z(order.accepted_at),
        "readyUndos": ready_undos_view(order),
    }


def ready_undos_view(order: Order) -> list[dict[str, Any]]:
    """Each time the order's ready was undone: when, by whom, and when it had been marked ready."""
    return [{"at": iso_z(undo.at), "by": {"id": undo.by, "name": undo.by_name}, "readyAt": iso_z(undo.ready_at)}
            for undo in order.ready_undos or ()]


def order_item_view(item: OrderItem) -> dict[str, Any]:
    """One priced cart line, in checkout sessions and orders alike."""
    return {
        "menuItemId": str(item.menu_item_id),
        "name": item.name,
        "price": paise_to_rupees(item.price_paise),
        "quantity": item.quantity,
        "total": paise_to_rupees(item.total_paise),
    }


def order_summary(order: Order) -> dict[str, Any]:
    """The order object of seed 001's `201` answer, key for key."""
    return {
        "id": str(order.id),
        "orderNumber": order.order_number,
        "paymentReference": order.payment_reference,
        "totalAmount": paise_to_rupees(order.total_paise),
        "paymentStatus": order.payment_status.value,
        "orderStatus": order.order_status.value,
        "paymentMethod": order.payment_method,
        "transactionId": order.transaction_id,
        "items": [order_item_view(item) for item in order.items],
        "specialInstructions": order.special_instructions,
        "isCommitmentConfirmed": order.is_commitment_confirmed,
        "commitmentDeadlineAt": iso_z(order.commitment_deadline_at),
        "store": {"id": str(order.store_id), "name": order.store_name, "location": order.store_location},
        "createdAt": iso_z(order.created_at),
        "updatedAt": iso_z(order.updated_at),
    }


def order_detail(order: Order, pickup_otp: str | None) -> dict[str, Any]:
    """`GET /api/orders/{id}`: the seed-001 shape plus lifecycle details."""
    detail = order_summary(order)
    detail.update(
        requiresCommitment=order.requires_commitment,
        commitmentConfirmedAt=iso_z(order.commitment_confirmed_at),
        paidAt=iso_z(order.paid_at),
        acceptedAt=iso_z(order.accepted_at),
        preparingAt=iso_z(order.preparing_at),
        readyAt=iso_z(order.ready_at),
        readyExpiresAt=iso_z(order.ready_expires_at),
        isOtpVerified=order.is_otp_verified,
        pickedUpAt=iso_z(order.picked_up_at),
        pickupMethod=order.pickup_method,
        pickedUpBy={"id": order.picked_up_by, "name": order.picked_up_by_name} if order.picked_up_by else None,
        cancelledAt=iso_z(order.cancelled_at),
        cancellationReason=order.cancellation_reason.value if order.cancellation_reason else None,
        customerFirstName=order.customer_first_name,
        version=order.version,
        itemMarks=list(order.item_marks or ()),
        readyUndos=ready_undos_view(order),
        slotDeferred=order.slot_deferred,
    )
    if pickup_otp is not None:
        detail["pickupOtp"] = pickup_otp
    return detail


def commitment_order(order: Order) -> dict[str, Any]:
    """The `order` object of seed 003's answer."""
    return {
        "id": str(order.id),
        "orderNumber": order.order_number,
        "status": order.order_status.value,
        "requiresCommitment": order.requires_commitment,
        "commitmentConfirmedAt": iso_z(order.commitment_confirmed_at),
        "commitmentDeadline": iso_z(order.commitment_deadline_at),
        "totalAmount": paise_to_rupees(order.total_paise),
        "paymentStatus": order.payment_status.value,
    }


def menu_item_view(item: MenuItem) -> dict[str, Any]:
    return {
        "id": str(item.id), "storeId": str(item.store_id), "name": item.name,
        "price": paise_to_rupees(item.price_paise), "category": item.category,
        "isAvailable": item.is_available, "capWeight": item.cap_weight, "createdAt": iso_z(item.created_at),
        "updatedAt": iso_z(item.updated_at),
    }


def store_view(store: Store) -> dict[str, Any]:
    return {
        "id": str(store.id), "name": store.name, "location": store.location, "description": store.description,
        "upiId": store.upi_id, "isActive": store.is_active, "createdAt": iso_z(store.created_at),
        "delayMinutes": store.delay_minutes, "isPaused": store.is_paused, "itemsPerSlot": store.items_per_slot,
    }


def user_view(user: User) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(user.id), "name": user.name, "email": user.email, "role": user.role,
        "storeId": user.store_id,
        "createdAt": iso_z(user.created_at),
    }
    if user.register_number:
        view["registerNumber"] = user.register_number
    if user.employee_id:
        view["employeeId"] = user.employee_id
    if user.phone_number:
        view["phoneNumber"] = user.phone_number
    return view


def partner_status(order: Order) -> str:
    """Seed 004's payment status of an order (PARTNER.md)."""
    if order.payment_status == PaymentStatus.SUCCESS:
        return "COMPLETED"
    if order.cancellation_reason == CancellationReason.PAYMENT_TIMEOUT:
        return "EXPIRED"
    if order.payment_status == PaymentStatus.FAILED or order.order_status == OrderStatus.CANCELLED:
        return "FAILED"
    return "STARTED"


def partner_view(order: Order, zone: ZoneInfo) -> dict[str, Any]:
    """Seed 004's order body: `GET /v1/order/{id}`, `POST /v1/order` and every webhook event's body."""
    status = partner_status(order)
    return {
        "requestId": order.payment_reference,
        "orderId": str(order.id),
        "status": status,
        "paidAt": partner_timestamp(order.paid_at, zone) if status == "COMPLETED" and order.paid_at else None,
        "metadata": {
            "paymentId": order.transaction_id,
            "txHash": None,
            "note": order.cancellation_reason.value if order.cancellation_reason else None,
        },
    }


def webhook_endpoint_view(endpoint: WebhookEndpoint, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """An endpoint as the CLI, the admin API and the console show it: never a secret."""
    view = {
        "endpointId": endpoint.endpoint_id, "clientId": endpoint.client_id, "url": endpoint.url,
        "events": endpoint.events, "enabled": endpoint.enabled, "disabledReason": endpoint.disabled_reason,
        "disabledAt": iso_z(endpoint.disabled_at), "createdAt": iso_z(endpoint.created_at),
        "secretsSigning": len(endpoint.secrets),
    }
    if counts is not None:
        view.update(pendingDeliveries=counts["pending"], failedDeliveries=counts["failed"])
    return view


def webhook_delivery_view(delivery: WebhookDelivery) -> dict[str, Any]:
    """One line of an endpoint's delivery log: each attempt, and the next try while pending."""
    return {
        "eventId": delivery.event_id, "endpointId": delivery.endpoint_id, "orderId": delivery.order_id,
        "version": delivery.version, "type": delivery.type, "status": delivery.status,
        "attempts": [{"at": iso_z(attempt.at), "statusCode": attempt.status_code, "latencyMs": attempt.latency_ms,
                      "error": attempt.error} for attempt in delivery.attempts],
        "nextAttemptAt": iso_z(delivery.next_attempt_at) if delivery.status in ("pending", "delivering") else None,
        "createdAt": iso_z(delivery.created_at), "finishedAt": iso_z(delivery.finished_at),
    }
