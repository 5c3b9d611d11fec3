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
from server.domain.trust import TrustStanding, TrustTier
from server.models import ClientApp, MenuItem, Order, OrderItem, Store, User, WebhookDelivery, WebhookEndpoint

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


# Another client's names of an answer's fields: each name -> the field it repeats; a dotted name
# (`store.name`) is a field of an object of the answer.
Names = Mapping[str, str]


def shaped(source: Any, shape: tuple[ShapeField, ...], names: Names | None = None) -> dict[str, Any]:
    """`source` as `shape` builds it: its fields, in the shape's order; then `names`, if asked."""
    return renamed({field.name: field.read(source) for field in shape}, names)


def renamed(view: Mapping[str, Any], names: Names | None) -> dict[str, Any]:
    """`view` with each of `names` after its fields, repeating the field it names where the view has it:
    a rendering option, so another client reads the same answer in its own words."""
    shown = dict(view)
    if not names:
        return shown
    for alias, source in names.items():
        holder, _, field = source.rpartition(".")
        container = view.get(holder) if holder else view
        if not isinstance(container, dict) or field not in container:
            continue
        into, _, name = alias.rpartition(".")
        if into:
            shown[into] = {**shown[into], name: container[field]}
        else:
            shown[name] = container[field]
    return shown


# Marks where a schema names another schema of the document (server/http/openapi.py writes the reference).
DOCUMENT_SCHEMA = "x-document-schema"


def document_ref(name: str, many: bool = False) -> Any:
    """A field whose type is a schema the document names (one rendered with another client's names);
    `many`: a list of them."""
    one = {DOCUMENT_SCHEMA: name}
    if many:
        return Annotated[list[dict[str, Any]], WithJsonSchema({"type": "array", "items": one})]
    return Annotated[dict[str, Any], WithJsonSchema(one)]


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


def order_summary(order: Order, names: Names | None = None) -> dict[str, Any]:
    """The order object of seed 001's `201` answer, key for key (then `names`, if asked)."""
    return shaped(order, SUMMARY_SHAPE, names)


PickupCode = Annotated[str, StringConstraints(pattern="^[0-9]{6}$")]
# A ready order's pickup code, for its owner.
PICKUP_CODE_SHAPE: tuple[ShapeField, ...] = (ShapeField("pickupOtp", PickupCode, lambda code: code),)
# What `GET /api/orders/{id}` adds to an order.
ESTIMATE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("estimatedReadyAt", Annotated[datetime | None, Field(
        description="GET /api/orders/{id}: when an active order not yet ready should be ready, from the store's "
                    "live queue; null otherwise")], iso_z),
)


def order_detail(order: Order, pickup_otp: str | None, names: Names | None = None) -> dict[str, Any]:
    """`GET /api/orders/{id}`: the seed-001 shape plus lifecycle details; `pickupOtp` for its owner
    while it is ready; then `names`, if asked."""
    detail = shaped(order, DETAIL_SHAPE)
    if pickup_otp is not None:
        detail.update(shaped(pickup_otp, PICKUP_CODE_SHAPE))
    return renamed(detail, names)


def commitment_order(order: Order) -> dict[str, Any]:
    """The `order` object of seed 003's answer."""
    return shaped(order, COMMITMENT_SHAPE)


def menu_item_view(item: MenuItem, names: Names | None = None) -> dict[str, Any]:
    return shaped(item, MENU_ITEM_SHAPE, names)


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


class CheckoutStore(TypedDict):
    """The store a checkout pays: where the customer pays it."""

    id: ObjectIdText
    name: str
    location: str
    upiId: str


class NoShowPolicy(TypedDict):
    """The customer's standing and the timeouts their order will run under."""

    trustTier: TrustTier
    noShowCount: int
    requiresCommitment: bool
    commitmentWindowMinutes: float
    unpaidTimeoutMinutes: float
    readyTimeoutMinutes: float


class DirectPayment(TypedDict):
    """The customer pays the store directly, by UPI."""

    mode: Literal["direct_store_upi"]
    upiLink: str


class SlotOffer(TypedDict):
    """A capped store: whether this order goes to a later 15-minute slot, and when it would then be ready."""

    deferred: bool
    readyAround: Timestamp | None


class CheckoutSession(TypedDict):
    """A priced cart, signed into the checkout token an order is later created from
    (server/services/checkout.py builds it)."""

    checkoutToken: str
    paymentReference: str
    expiresInSeconds: int
    totalAmount: Rupees
    items: list[OrderLine]  # type: ignore[valid-type]  # a model made from a shape, at import
    specialInstructions: str | None
    store: CheckoutStore
    noShowPolicy: NoShowPolicy
    payment: DirectPayment
    slot: SlotOffer | None


class StoreCapacity(TypedDict):
    """A capped store's slots now (server/services/catalog.py builds it); `nextFreeSlot` null: full."""

    itemsPerSlot: int
    slotStart: Timestamp
    slotItems: int
    nextFreeSlot: Timestamp | None
    deferring: bool


# What server/services/catalog.py's `store_with_capacity` adds to a store.
STORE_CAPACITY_TYPES: dict[str, Any] = {"capacity": Annotated[StoreCapacity | None, Field(
    description="a capped store's slots now (GET one store, its pace, the menu events); `nextFreeSlot` null: full")]}


class StoreLoad(NamedTuple):
    """How busy a store's kitchen is: about how long an order placed now would take, and its typical preparation."""

    wait_minutes: int
    typical_minutes: float


# What `GET /api/stores/{id}` adds to a store.
STORE_LOAD_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("waitMinutes", Annotated[int, Field(
        ge=1, description="about how long an order placed now would take (GET one store)")],
        lambda load: load.wait_minutes),
    ShapeField("typicalPrepMinutes", Annotated[float, Field(
        ge=0, description="the store's typical accepted → ready time, learned from its recent orders (GET one "
                          "store)")], lambda load: load.typical_minutes),
)


def store_view(store: Store, names: Names | None = None) -> dict[str, Any]:
    return shaped(store, STORE_SHAPE, names)


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


# What signing in, refreshing and `/api/users/me` add to a user.
PROFILE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("isEmailVerified", Annotated[bool, Field(description="the owner followed the link mailed to the "
                                                                    "address")],
               lambda user: user.email_verified_at is not None),
)
# A store employee's sign-up, while no admin has assigned them a store.
AWAITING_STORE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("awaitingStore", Annotated[bool, Field(description="a store employee no admin has assigned a "
                                                                  "store yet: acts for no store")],
               lambda user: user.store_id is None),
)
# A customer's trust standing (server/domain/trust.py).
STANDING_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("trustTier", TrustTier, lambda standing: standing.tier.value),
    ShapeField("noShowCount", int, lambda standing: standing.no_show_count),
    ShapeField("orderingRestrictedUntil", datetime | None, lambda standing: iso_z(standing.restricted_until)),
)
# A profile's standing: staff and admins have none, which it states as no tier and no no-shows.
PROFILE_STANDING_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("trustTier", TrustTier | None, lambda standing: standing.tier.value if standing else None),
    ShapeField("noShowCount", int, lambda standing: standing.no_show_count if standing else 0),
    ShapeField("orderingRestrictedUntil", datetime | None,
               lambda standing: iso_z(standing.restricted_until) if standing else None),
)


def profile_view(user: User, standing: TrustStanding | None, names: Names | None = None) -> dict[str, Any]:
    """The user with their trust standing (customers; staff and admins have none), as signing in,
    refreshing and `/api/users/me` answer it."""
    view = {**user_view(user), **shaped(user, PROFILE_SHAPE)}
    if user.role == Role.STORE_EMPLOYEE:
        view.update(shaped(user, AWAITING_STORE_SHAPE))
    return renamed({**view, **shaped(standing, PROFILE_STANDING_SHAPE)}, names)


class SignedIn(NamedTuple):
    """A new session: its tokens and the profile of the user it is for."""

    tokens: Mapping[str, str]
    profile: dict[str, Any]


SESSION_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("accessToken", str, lambda session: session.tokens["accessToken"]),
    ShapeField("refreshToken", str, lambda session: session.tokens["refreshToken"]),
    ShapeField("user", document_ref("Profile"), lambda session: session.profile),
)


def session_view(tokens: Mapping[str, str], profile: dict[str, Any]) -> dict[str, Any]:
    """Registering, signing in and refreshing: the tokens and the user's profile."""
    return shaped(SignedIn(tokens, profile), SESSION_SHAPE)


# What admins see of an account beyond a user.
ACCOUNT_SHAPE: tuple[ShapeField, ...] = (ShapeField("isActive", bool, lambda user: user.is_active),)
# A store employee's sign-up, in the admins' list of accounts.
SIGNUP_SHAPE: tuple[ShapeField, ...] = (
    *AWAITING_STORE_SHAPE,
    ShapeField("requestedStore", Annotated[str | None, Field(
        description="the store a store employee named when signing up")], lambda user: user.requested_store),
)


def admin_user_view(user: User, signup: bool = False) -> dict[str, Any]:
    """An account as admins see it; `signup`: a store employee's sign-up too (`SIGNUP_SHAPE`)."""
    view = {**user_view(user), **shaped(user, ACCOUNT_SHAPE)}
    if signup and user.role == Role.STORE_EMPLOYEE:
        view.update(shaped(user, SIGNUP_SHAPE))
    return view


AdminUser = shape_model("AdminUser", USER_SHAPE, "An account as admins see it; a store employee's sign-up in "
                                                  "the list of accounts.",
                        also=field_types(ACCOUNT_SHAPE),
                        optional={**field_types(USER_DETAILS_SHAPE), **field_types(SIGNUP_SHAPE)})


def customer_view(user: User, standing: TrustStanding) -> dict[str, Any]:
    """A student or faculty member as admins see them: the account and its trust standing."""
    return {**admin_user_view(user), **shaped(standing, STANDING_SHAPE)}


Customer = shape_model("Customer", USER_SHAPE, "A student or faculty member with their trust standing.",
                       also={**field_types(ACCOUNT_SHAPE), **field_types(STANDING_SHAPE)},
                       optional=field_types(USER_DETAILS_SHAPE))


class Page(NamedTuple):
    """One page of a list an admin reads."""

    items: list[dict[str, Any]]
    page: int
    limit: int
    total: int


def page_shape(key: str, item: Any) -> tuple[ShapeField, ...]:
    """A page of `item`s under `key`, then where it is in the whole list."""
    return (
        ShapeField(key, list[item], lambda page: page.items),
        ShapeField("page", int, lambda page: page.page),
        ShapeField("limit", int, lambda page: page.limit),
        ShapeField("total", int, lambda page: page.total),
        ShapeField("pages", int, lambda page: (page.total + page.limit - 1) // page.limit),
    )


def page_view(shape: tuple[ShapeField, ...], items: list[dict[str, Any]], page: int, limit: int,
              total: int) -> dict[str, Any]:
    """A page of shaped `items` as `shape` (a `page_shape`) lists them."""
    return shaped(Page(items, page, limit, total), shape)


USER_PAGE_SHAPE = page_shape("users", AdminUser)
CUSTOMER_PAGE_SHAPE = page_shape("customers", Customer)
UserPage = shape_model("UserPage", USER_PAGE_SHAPE, "Accounts, newest first, a page of them.")
CustomerPage = shape_model("CustomerPage", CUSTOMER_PAGE_SHAPE, "Students and faculty, newest first, a page of "
                                                                "them.")


def _no_show_cleared(order: Order) -> bool:
    return order.no_show_cleared_at is not None and order.no_show_at is None


# A no-show recorded against a customer; who cleared it, when and why, if an admin did.
NO_SHOW_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("orderId", ObjectIdText, lambda order: str(order.id)),
    ShapeField("orderNumber", str, lambda order: order.order_number),
    ShapeField("storeId", ObjectIdText, lambda order: order.store_id),
    ShapeField("recordedAt", datetime | None, lambda order: iso_z(
        order.no_show_recorded_at if _no_show_cleared(order) else order.no_show_at)),
    ShapeField("clearedAt", datetime | None,
               lambda order: iso_z(order.no_show_cleared_at) if _no_show_cleared(order) else None),
    ShapeField("clearedBy", str | None,
               lambda order: order.no_show_cleared_by if _no_show_cleared(order) else None),
    ShapeField("clearedByName", str | None,
               lambda order: order.no_show_cleared_by_name if _no_show_cleared(order) else None),
    ShapeField("clearedReason", str | None,
               lambda order: order.no_show_cleared_reason if _no_show_cleared(order) else None),
)
NoShow = shape_model("NoShow", NO_SHOW_SHAPE, "A no-show recorded against a customer, and its clearing.")


def no_show_view(order: Order) -> dict[str, Any]:
    return shaped(order, NO_SHOW_SHAPE)


PARTNER_CLIENT_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("clientId", str, lambda client: client.client_id),
    ShapeField("name", str, lambda client: client.name),
    ShapeField("isActive", bool, lambda client: client.is_active),
    ShapeField("createdAt", datetime, lambda client: iso_z(client.created_at)),
    ShapeField("revokedAt", datetime | None, lambda client: iso_z(client.revoked_at)),
)
PartnerClient = shape_model("PartnerClient", PARTNER_CLIENT_SHAPE, "A partner client of /v1; its id is its "
                                                                    "X-Client-ID.")


def partner_client_view(client: ClientApp) -> dict[str, Any]:
    return shaped(client, PARTNER_CLIENT_SHAPE)


class OrderPage(NamedTuple):
    """A page of orders, each already shaped, and where it is in the whole list."""

    orders: list[dict[str, Any]]
    page: int
    limit: int
    total: int


PAGINATION_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("total", int, lambda page: page.total),
    ShapeField("page", int, lambda page: page.page),
    ShapeField("limit", int, lambda page: page.limit),
    ShapeField("totalPages", int, lambda page: (page.total + page.limit - 1) // page.limit),
)
Pagination = shape_model("Pagination", PAGINATION_SHAPE, "Where a page is in the whole list.")
# `GET /api/orders`, CampusBite's shape, which OrderPulse's pages read too: the page as `data`, its place beside it.
ORDER_PAGE_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("success", Literal[True], lambda page: True),
    ShapeField("data", document_ref("Order", many=True), lambda page: page.orders),
    ShapeField("pagination", Pagination, lambda page: shaped(page, PAGINATION_SHAPE)),
)


def order_page_view(orders: list[dict[str, Any]], page: int, limit: int, total: int) -> dict[str, Any]:
    return shaped(OrderPage(orders, page, limit, total), ORDER_PAGE_SHAPE)


@with_config(ConfigDict(extra="forbid"))
class CommitmentData(TypedDict):
    """The confirmed order in full, where CampusBite's web client reads it."""

    order: Annotated[dict[str, Any], WithJsonSchema({DOCUMENT_SCHEMA: "Order"})]


class ConfirmedCommitment(NamedTuple):
    """A confirmed commitment: the order, the message, and the order as its caller sees it in full."""

    order: Order
    message: str
    detail: dict[str, Any]


# Seed 003's body, and `data.order` (the full order), where CampusBite's web client reads it.
COMMITMENT_ANSWER_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("success", Literal[True], lambda confirmed: True),
    ShapeField("message", str, lambda confirmed: confirmed.message),
    ShapeField("order", document_ref("CommitmentOrder"), lambda confirmed: commitment_order(confirmed.order)),
    ShapeField("data", CommitmentData, lambda confirmed: {"order": confirmed.detail}),
)


def commitment_view(order: Order, message: str, detail: dict[str, Any]) -> dict[str, Any]:
    """Seed 003's answer to a confirmed commitment."""
    return shaped(ConfirmedCommitment(order, message, detail), COMMITMENT_ANSWER_SHAPE)


PartnerStatus = Literal["STARTED", "COMPLETED", "FAILED", "EXPIRED"]


class PartnerMetadata(TypedDict):
    """Seed 004's `metadata`: the payment's transaction id, no chain hash, why it ended if it was cancelled."""

    paymentId: str | None
    txHash: None
    note: str | None


class PartnerOrder(TypedDict):
    """Seed 004's order body (PARTNER.md)."""

    requestId: str
    orderId: ObjectIdText
    status: PartnerStatus
    paidAt: Annotated[str | None, Field(description="the partner's local time, when COMPLETED")]
    metadata: PartnerMetadata


def partner_status(order: Order) -> PartnerStatus:
    """Seed 004's payment status of an order (PARTNER.md)."""
    if order.payment_status == PaymentStatus.SUCCESS:
        return "COMPLETED"
    if order.cancellation_reason == CancellationReason.PAYMENT_TIMEOUT:
        return "EXPIRED"
    if order.payment_status == PaymentStatus.FAILED or order.order_status == OrderStatus.CANCELLED:
        return "FAILED"
    return "STARTED"


def partner_view(order: Order, zone: ZoneInfo) -> PartnerOrder:
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


# The signing secret, in the answers that create or rotate it.
SIGNING_SECRET_SHAPE: tuple[ShapeField, ...] = (
    ShapeField("secret", Annotated[str, StringConstraints(pattern="^whsec_"), Field(description="shown once")],
               lambda secret: secret),
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
