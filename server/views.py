"""The shapes clients see of an order, each defined once.

`LEAN_SHAPE` is the seed-000 poll-status body; events and socket snapshots add `storeId` and
`version` to it (`EVENT_SHAPE`), and store subscribers get `kitchen_fields` on top. An order's
summary (seed 001) and detail, its cart lines and a menu item are shapes too. Each shape is a
tuple of `ShapeField`s that both builds the answer (`shaped`) and describes it (`shape_model`,
whose JSON Schema the OpenAPI document publishes).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Annotated, Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema, create_model, with_config
from typing_extensions import TypedDict

from server.domain.access import Role
from server.domain.clock import iso_z, partner_timestamp
from server.domain.lifecycle import CancellationReason, OrderStatus, PaymentStatus, PickupMethod
from server.domain.money import paise_to_rupees
from server.models import MenuItem, Order, OrderItem, Store, User, WebhookDelivery, WebhookEndpoint

ObjectIdText = Annotated[str, StringConstraints(pattern="^[0-9a-f]{24}$")]
Rupees = Annotated[float, Field(ge=0)]  # whole rupees are sent as integers (`120`), as in seed 001
# A time as the answers write it (`iso_z`); the shapes' `datetime` fields are written so too.
Timestamp = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class ShapeField(NamedTuple):
    """One field of a shape: its JSON name, its type as the document states it, how it is read
    from what is shaped (an order, a cart line, a menu item)."""

    name: str
    type: Any
    read: Callable[[Any], Any]


def shaped(source: Any, shape: tuple[ShapeField, ...]) -> dict[str, Any]:
    """`source` as `shape` builds it: its fields, in the shape's order."""
    return {field.name: field.read(source) for field in shape}


def shape_model(name: str, shape: tuple[ShapeField, ...], description: str, *,
                also: Mapping[str, Any] | None = None, optional: Mapping[str, Any] | None = None,
                closed: bool = True) -> type[BaseModel]:
    """A shape as a pydantic model, for its JSON Schema: the shape's fields required, in its order,
    then the fields every answer adds (`also`) and those some answers add (`optional`), by name and
    type; `closed`: no other field."""
    fields: dict[str, Any] = {}
    required = [*field_types(shape).items(), *(also or {}).items()]
    for index, (json_name, kind) in enumerate(required):
        fields[f"field_{index}"] = (kind, Field(alias=json_name))
    for index, (json_name, kind) in enumerate((optional or {}).items()):
        fields[f"optional_{index}"] = (kind, Field(None, alias=json_name))
    return create_model(name, __config__=ConfigDict(extra="forbid" if closed else "ignore"), __doc__=description,
                        **fields)


def field_types(shape: tuple[ShapeField, ...]) -> dict[str, Any]:
    """Each field's JSON name and type, in the shape's order."""
    return {field.name: field.type for field in shape}


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


@with_config(ConfigDict(extra="forbid"))
class StaffMember(TypedDict):
    """Who did something to an order: a member of its store's staff."""

    id: ObjectIdText
    name: str


@with_config(ConfigDict(extra="forbid"))
class ReadyUndo(TypedDict):
    """One undone ready: when, by whom, and when the order had been marked ready."""

    at: Timestamp
    by: StaffMember
    readyAt: Timestamp | None


def ready_undos_view(order: Order) -> list[dict[str, Any]]:
    """Each time the order's ready was undone: when, by whom, and when it had been marked ready (`ReadyUndo`)."""
    return [{"at": iso_z(undo.at), "by": {"id": undo.by, "name": undo.by_name}, "readyAt": iso_z(undo.ready_at)}
            for undo in order.ready_undos or ()]


# One priced cart line, in checkout sessions and orders alike.
ORDER_LINE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("menuItemId", ObjectIdText, lambda item: str(item.menu_item_id)),
    ShapeField("name", str, lambda item: item.name),
    ShapeField("price", Rupees, lambda item: paise_to_rupees(item.price_paise)),
    ShapeField("quantity", int, lambda item: item.quantity),
    ShapeField("total", Rupees, lambda item: paise_to_rupees(item.total_paise)),
)
OrderLine = shape_model("OrderLine", ORDER_LINE_SHAPE, "One priced cart line, in checkout sessions and orders.")
# The store an order was placed at, as the order keeps it.
ORDER_STORE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda order: str(order.store_id)),
    ShapeField("name", str, lambda order: order.store_name),
    ShapeField("location", str, lambda order: order.store_location),
)
OrderStore = shape_model("OrderStore", ORDER_STORE_SHAPE, "The store an order was placed at.")
PaymentReference = Annotated[str, StringConstraints(pattern="^CBPAY[0-9A-F]{10}$")]

# Seed 001's `201` order, key for key.
SUMMARY_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda order: str(order.id)),
    ShapeField("orderNumber", str, lambda order: order.order_number),
    ShapeField("paymentReference", PaymentReference, lambda order: order.payment_reference),
    ShapeField("totalAmount", Rupees, lambda order: paise_to_rupees(order.total_paise)),
    ShapeField("paymentStatus", PaymentStatus, lambda order: order.payment_status.value),
    ShapeField("orderStatus", OrderStatus, lambda order: order.order_status.value),
    ShapeField("paymentMethod", str, lambda order: order.payment_method),
    ShapeField("transactionId", str | None, lambda order: order.transaction_id),
    ShapeField("items", list[OrderLine],  # type: ignore[valid-type]  # a model made from a shape, at import
               lambda order: [order_item_view(item) for item in order.items]),
    ShapeField("specialInstructions", str | None, lambda order: order.special_instructions),
    ShapeField("isCommitmentConfirmed", bool, lambda order: order.is_commitment_confirmed),
    ShapeField("commitmentDeadlineAt", datetime | None, lambda order: iso_z(order.commitment_deadline_at)),
    ShapeField("store", OrderStore, lambda order: shaped(order, ORDER_STORE_SHAPE)),
    ShapeField("createdAt", datetime, lambda order: iso_z(order.created_at)),
    ShapeField("updatedAt", datetime, lambda order: iso_z(order.updated_at)),
)
# `GET /api/orders/{id}`: the summary plus the order's lifecycle.
DETAIL_SHAPE: tuple[ShapeField, ...] = (
    *SUMMARY_SHAPE,
    ShapeField("requiresCommitment", bool, lambda order: order.requires_commitment),
    ShapeField("commitmentConfirmedAt", datetime | None, lambda order: iso_z(order.commitment_confirmed_at)),
    ShapeField("paidAt", datetime | None, lambda order: iso_z(order.paid_at)),
    ShapeField("acceptedAt", datetime | None, lambda order: iso_z(order.accepted_at)),
    ShapeField("preparingAt", datetime | None, lambda order: iso_z(order.preparing_at)),
    ShapeField("readyAt", datetime | None, lambda order: iso_z(order.ready_at)),
    ShapeField("readyExpiresAt", datetime | None, lambda order: iso_z(order.ready_expires_at)),
    ShapeField("isOtpVerified", bool, lambda order: order.is_otp_verified),
    ShapeField("pickedUpAt", datetime | None, lambda order: iso_z(order.picked_up_at)),
    ShapeField("pickupMethod", PickupMethod | None, lambda order: order.pickup_method),
    ShapeField("pickedUpBy", Annotated[StaffMember | None,
                                       Field(description="the staff member who handed the order over")],
               lambda order: {"id": order.picked_up_by, "name": order.picked_up_by_name} if order.picked_up_by
               else None),
    ShapeField("cancelledAt", datetime | None, lambda order: iso_z(order.cancelled_at)),
    ShapeField("cancellationReason", CancellationReason | None,
               lambda order: order.cancellation_reason.value if order.cancellation_reason else None),
    ShapeField("customerFirstName", str, lambda order: order.customer_first_name),
    ShapeField("version", int, lambda order: order.version),
    ShapeField("itemMarks", Annotated[list[Annotated[int, Field(ge=0)]],
                                      Field(description="indexes in `items` the kitchen has struck as done")],
               lambda order: list(order.item_marks or ())),
    ShapeField("readyUndos", Annotated[list[ReadyUndo], Field(
        description="each time the kitchen put the ready order back to preparing: when, who, and when it had "
                    "been marked ready")], ready_undos_view),
    ShapeField("slotDeferred", Annotated[bool, Field(
        description="the store's cap was hit: the order was counted in a later 15-minute slot than the one it "
                    "was placed in")], lambda order: order.slot_deferred),
)
# Seed 003's `order`.
COMMITMENT_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda order: str(order.id)),
    ShapeField("orderNumber", str, lambda order: order.order_number),
    ShapeField("status", OrderStatus, lambda order: order.order_status.value),
    ShapeField("requiresCommitment", bool, lambda order: order.requires_commitment),
    ShapeField("commitmentConfirmedAt", datetime | None, lambda order: iso_z(order.commitment_confirmed_at)),
    ShapeField("commitmentDeadline", datetime | None, lambda order: iso_z(order.commitment_deadline_at)),
    ShapeField("totalAmount", Rupees, lambda order: paise_to_rupees(order.total_paise)),
    ShapeField("paymentStatus", PaymentStatus, lambda order: order.payment_status.value),
)
MENU_ITEM_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda item: str(item.id)),
    ShapeField("storeId", ObjectIdText, lambda item: str(item.store_id)),
    ShapeField("name", str, lambda item: item.name),
    ShapeField("price", Rupees, lambda item: paise_to_rupees(item.price_paise)),
    ShapeField("category", str | None, lambda item: item.category),
    ShapeField("isAvailable", bool, lambda item: item.is_available),
    ShapeField("capWeight", Annotated[int, Field(ge=1, description="items of the store's per-slot cap one counts for")],
               lambda item: item.cap_weight),
    ShapeField("createdAt", datetime, lambda item: iso_z(item.created_at)),
    ShapeField("updatedAt", datetime, lambda item: iso_z(item.updated_at)),
)


def order_item_view(item: OrderItem) -> dict[str, Any]:
    """One priced cart line, in checkout sessions and orders alike."""
    return shaped(item, ORDER_LINE_SHAPE)


def order_summary(order: Order) -> dict[str, Any]:
    """The order object of seed 001's `201` answer, key for key."""
    return shaped(order, SUMMARY_SHAPE)


def order_detail(order: Order, pickup_otp: str | None) -> dict[str, Any]:
    """`GET /api/orders/{id}`: the seed-001 shape plus lifecycle details; `pickupOtp` for its owner
    while it is ready."""
    detail = shaped(order, DETAIL_SHAPE)
    if pickup_otp is not None:
        detail["pickupOtp"] = pickup_otp
    return detail


def commitment_order(order: Order) -> dict[str, Any]:
    """The `order` object of seed 003's answer."""
    return shaped(order, COMMITMENT_SHAPE)


def menu_item_view(item: MenuItem) -> dict[str, Any]:
    return shaped(item, MENU_ITEM_SHAPE)


STORE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda store: str(store.id)),
    ShapeField("name", str, lambda store: store.name),
    ShapeField("location", str, lambda store: store.location),
    ShapeField("description", str | None, lambda store: store.description),
    ShapeField("upiId", str, lambda store: store.upi_id),
    ShapeField("isActive", bool, lambda store: store.is_active),
    ShapeField("createdAt", datetime, lambda store: iso_z(store.created_at)),
    ShapeField("delayMinutes", Annotated[float, Field(ge=0)], lambda store: store.delay_minutes),
    ShapeField("isPaused", bool, lambda store: store.is_paused),
    ShapeField("itemsPerSlot", Annotated[Annotated[int, Field(ge=1)] | None, Field(
        description="items taken per 15-minute slot; null: no cap")], lambda store: store.items_per_slot),
    ShapeField("closesAt", Annotated[datetime | None, Field(
        description="closing time for payments: no new orders from then on; null: open")],
        lambda store: iso_z(store.closes_at)),
)


class StoreCapacity(TypedDict):
    """A capped store's slots now (server/services/catalog.py builds it); `nextFreeSlot` null: full."""

    itemsPerSlot: int
    slotStart: Timestamp
    slotItems: int
    nextFreeSlot: Timestamp | None
    deferring: bool


def store_view(store: Store) -> dict[str, Any]:
    return shaped(store, STORE_SHAPE)


USER_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("id", ObjectIdText, lambda user: str(user.id)),
    ShapeField("name", str, lambda user: user.name),
    ShapeField("email", str, lambda user: user.email),
    ShapeField("role", Role, lambda user: user.role),
    ShapeField("storeId", str | None, lambda user: user.store_id),
    ShapeField("createdAt", datetime, lambda user: iso_z(user.created_at)),
)
# Present only when the account has them.
USER_DETAILS_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("registerNumber", str, lambda user: user.register_number),
    ShapeField("employeeId", str, lambda user: user.employee_id),
    ShapeField("phoneNumber", str, lambda user: user.phone_number),
)


def user_view(user: User) -> dict[str, Any]:
    view = shaped(user, USER_SHAPE)
    view.update({field.name: value for field in USER_DETAILS_SHAPE if (value := field.read(user))})
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


WEBHOOK_ENDPOINT_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("endpointId", str, lambda endpoint: endpoint.endpoint_id),
    ShapeField("clientId", str, lambda endpoint: endpoint.client_id),
    ShapeField("url", str, lambda endpoint: endpoint.url),
    ShapeField("events", list[str], lambda endpoint: endpoint.events),
    ShapeField("enabled", bool, lambda endpoint: endpoint.enabled),
    ShapeField("disabledReason", str | None, lambda endpoint: endpoint.disabled_reason),
    ShapeField("disabledAt", datetime | None, lambda endpoint: iso_z(endpoint.disabled_at)),
    ShapeField("createdAt", datetime, lambda endpoint: iso_z(endpoint.created_at)),
    ShapeField("secretsSigning", int, lambda endpoint: len(endpoint.secrets)),
)
# An endpoint's deliveries by state, where the admin API and the CLI show them.
DELIVERY_COUNTS_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("pendingDeliveries", int, lambda counts: counts["pending"]),
    ShapeField("failedDeliveries", int, lambda counts: counts["failed"]),
)


def webhook_endpoint_view(endpoint: WebhookEndpoint, counts: dict[str, int] | None = None) -> dict[str, Any]:
    """An endpoint as the CLI, the admin API and the console show it: never a secret."""
    view = shaped(endpoint, WEBHOOK_ENDPOINT_SHAPE)
    if counts is not None:
        view.update(shaped(counts, DELIVERY_COUNTS_SHAPE))
    return view


class DeliveryAttempt(TypedDict):
    """One try of a webhook delivery: when, the receiver's status (none if it did not answer), how long."""

    at: Timestamp
    statusCode: int | None
    latencyMs: float
    error: str | None


# One line of an endpoint's delivery log: each attempt, and the next try while pending.
DELIVERY_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("eventId", str, lambda delivery: delivery.event_id),
    ShapeField("endpointId", str, lambda delivery: delivery.endpoint_id),
    ShapeField("orderId", ObjectIdText, lambda delivery: delivery.order_id),
    ShapeField("version", int, lambda delivery: delivery.version),
    ShapeField("type", str, lambda delivery: delivery.type),
    ShapeField("status", Literal["pending", "delivering", "succeeded", "failed"], lambda delivery: delivery.status),
    ShapeField("attempts", list[DeliveryAttempt], lambda delivery: [
        {"at": iso_z(attempt.at), "statusCode": attempt.status_code, "latencyMs": attempt.latency_ms,
         "error": attempt.error} for attempt in delivery.attempts]),
    ShapeField("nextAttemptAt", datetime | None, lambda delivery: iso_z(delivery.next_attempt_at)
               if delivery.status in ("pending", "delivering") else None),
    ShapeField("createdAt", datetime, lambda delivery: iso_z(delivery.created_at)),
    ShapeField("finishedAt", datetime | None, lambda delivery: iso_z(delivery.finished_at)),
)


def webhook_delivery_view(delivery: WebhookDelivery) -> dict[str, Any]:
    """One line of an endpoint's delivery log: each attempt, and the next try while pending."""
    return shaped(delivery, DELIVERY_SHAPE)
