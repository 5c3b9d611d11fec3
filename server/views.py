"""The shapes clients see of an order, each defined once.

`lean_order` is the seed-000 poll-status body; events and socket snapshots add `storeId` and
`version` to it, and store subscribers get `kitchen_fields` on top.
"""

from __future__ import annotations

from typing import Any

from server.domain.clock import iso_z
from server.domain.money import paise_to_rupees
from server.models import MenuItem, Order, OrderItem, Store, User

LEAN_FIELDS = (
    "id", "orderNumber", "orderStatus", "paymentStatus", "totalAmount", "isCommitmentConfirmed",
    "commitmentDeadlineAt", "readyAt", "readyExpiresAt", "isOtpVerified", "cancelledAt",
    "cancellationReason", "updatedAt",
)


def lean_order(order: Order) -> dict[str, Any]:
    """Exactly the 13 fields of seed 000's example."""
    return {
        "id": str(order.id),
        "orderNumber": order.order_number,
        "orderStatus": order.order_status.value,
        "paymentStatus": order.payment_status.value,
        "totalAmount": paise_to_rupees(order.total_paise),
        "isCommitmentConfirmed": order.is_commitment_confirmed,
        "commitmentDeadlineAt": iso_z(order.commitment_deadline_at),
        "readyAt": iso_z(order.ready_at),
        "readyExpiresAt": iso_z(order.ready_expires_at),
        "isOtpVerified": order.is_otp_verified,
        "cancelledAt": iso_z(order.cancelled_at),
        "cancellationReason": order.cancellation_reason.value if order.cancellation_reason else None,
        "updatedAt": iso_z(order.updated_at),
    }


def event_order(order: Order) -> dict[str, Any]:
    """The `order` object of a real-time event (REALTIME.md): lean shape plus routing."""
    return {**lean_order(order), "storeId": str(order.store_id), "version": order.version}


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
    }


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
        readyAt=iso_z(order.ready_at),
        readyExpiresAt=iso_z(order.ready_expires_at),
        isOtpVerified=order.is_otp_verified,
        pickedUpAt=iso_z(order.picked_up_at),
        cancelledAt=iso_z(order.cancelled_at),
        cancellationReason=order.cancellation_reason.value if order.cancellation_reason else None,
        customerFirstName=order.customer_first_name,
        version=order.version,
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
        "isAvailable": item.is_available, "createdAt": iso_z(item.created_at),
        "updatedAt": iso_z(item.updated_at),
    }


def store_view(store: Store) -> dict[str, Any]:
    return {
        "id": str(store.id), "name": store.name, "location": store.location, "upiId": store.upi_id,
        "isActive": store.is_active, "createdAt": iso_z(store.created_at),
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
    return view
