"""The JSON bodies the API accepts, one pydantic model each: the same model parses a request
(a `400` naming the first field that breaks a rule) and is the body's schema in `/openapi.json`.
Their field rules and the parsing are in server/http/body_rules.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import Field, model_validator

from server.domain import messages
from server.domain.access import ADMIN_GIVEN_ROLES, CUSTOMER_ROLES, Role
from server.domain.cart import MAX_CART_LINES, MAX_QUANTITY
from server.domain.lifecycle import OrderStatus
from server.domain.slots import MAX_CAP_WEIGHT, MAX_ITEMS_PER_SLOT
from server.http.body_rules import (
    OBJECT_ID, Bounded, DelayMinutes, Email, FieldProblem, Flag, Items, Moment, Nested, NewPassword, Passed, Password, Phone,
    PickupCode, Price, PushKey, RequestModel, RequiredFlag, Text, WholeNumber,
)

TRANSACTION_ID = {"type": ["string", "null"], "pattern": "^([A-Za-z0-9]{8,40})?$",
                  "description": "UPI transaction id; blank or null when not known yet"}


class RegisterRequest(RequestModel):
    """Register a student (with `registerNumber`), a faculty member (with `employeeId`), or a store
    employee (with `employeeId` and the `storeName` they work at), who can act for no store until
    an admin assigns one. `phoneNumber` is optional; CampusBite's `storeUpiId` is not read (the
    store's own settings hold its UPI id)."""

    name: Annotated[str, Text(100)]
    email: Annotated[str, Email()]
    password: Annotated[str, NewPassword()]
    role: Annotated[str, Text(choices=(*CUSTOMER_ROLES, Role.STORE_EMPLOYEE))]
    register_number: Annotated[str | None, Text(50, only_for=(Role.STUDENT,))]
    employee_id: Annotated[str | None, Text(50, only_for=(Role.FACULTY, Role.STORE_EMPLOYEE))]
    store_name: Annotated[str | None, Text(100, only_for=(Role.STORE_EMPLOYEE,))]
    phone_number: Annotated[str | None, Phone()] = None


class ProfileUpdateRequest(RequestModel):
    """`PUT /api/users/profile`: the fields sent change (absent ones stay); a null or blank
    `phoneNumber` removes it. `email` and `role` are read only to refuse a change of them."""

    snake_case_too: ClassVar[bool] = True
    needs_a_change: ClassVar[bool] = True

    name: Annotated[str | None, Text(100, null_unchanged=True)] = None
    phone_number: Annotated[str | None, Phone()] = None
    register_number: Annotated[str | None, Text(50, null_unchanged=True)] = None
    email: Annotated[Any, Passed({"type": ["string", "null"], "description": "refused unless it is the account's "
                                                                            "own email"}, required=False)] = None
    role: Annotated[Any, Passed({"type": ["string", "null"], "description": "refused unless it is the account's "
                                                                           "own role"}, required=False)] = None


class LoginRequest(RequestModel):
    email: Annotated[str, Email()]  # normalised as registration normalised it
    password: Annotated[str, Password()]


class RefreshRequest(RequestModel):
    """A refresh token to rotate (`/refresh`) or whose family to revoke (`/logout`)."""

    refresh_token: Annotated[str, Text(200)]


class AdminUserRequest(RequestModel):
    """Create a store employee (of `storeId`) or an admin."""

    name: Annotated[str, Text(100)]
    email: Annotated[str, Email()]
    password: Annotated[str, NewPassword()]
    role: Annotated[str, Text(choices=ADMIN_GIVEN_ROLES)]
    store_id: Annotated[str | None, Text(24, required=False)] = None

    # The service refuses a store employee without a store that exists.
    role_variants: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {Role.STORE_EMPLOYEE: {"storeId": OBJECT_ID}}


class AdminUserPatch(RequestModel):
    """Disable (`false`) or re-enable (`true`) an account."""

    is_active: Annotated[bool, RequiredFlag()]


class AdminRoleRequest(RequestModel):
    """Make a store employee or an admin an admin, or a store employee of `storeId`."""

    role: Annotated[str, Text(choices=ADMIN_GIVEN_ROLES)]
    store_id: Annotated[str | None, Text(24, required=False)] = None

    # The service refuses a store employee without a store that exists.
    role_variants: ClassVar[dict[str, dict[str, dict[str, Any]]]] = {Role.STORE_EMPLOYEE: {"storeId": OBJECT_ID}}


class CreateStoreRequest(RequestModel):
    name: Annotated[str, Text(100)]
    location: Annotated[str, Text(200)]
    upi_id: Annotated[str, Text(100)]
    is_active: Annotated[bool, Flag(default=True)] = True
    description: Annotated[str | None, Text(300, required=False, multiline=True)] = None


class StoreUpdateRequest(RequestModel):
    """Edit a store or open (`isActive: true`) and close it; only the fields sent change. A store
    always has a name, a location, a UPI id and a state, so null is refused for them (absent leaves
    them as they are); a null or blank `description` removes it."""

    name: Annotated[str | None, Text(100)] = None
    location: Annotated[str | None, Text(200)] = None
    description: Annotated[str | None, Text(300, required=False, multiline=True)] = None
    upi_id: Annotated[str | None, Text(100)] = None
    is_active: Annotated[bool | None, Flag(default=None, null_refused=True)] = None

    needs_a_change: ClassVar[bool] = True

    def changes(self) -> dict[str, Any]:
        """The store's fields to set, by their stored names; a blank or null `description` removes it."""
        values = {"name": self.name, "location": self.location, "upi_id": self.upi_id, "is_active": self.is_active}
        changes: dict[str, Any] = {name: value for name, value in values.items() if value is not None}
        if "description" in self.model_fields_set:
            changes["description"] = self.description
        return changes


class StoreSettingsRequest(StoreUpdateRequest):
    """A store's settings replaced as a whole (CampusBite's `PUT /api/stores/{id}`): name and UPI id
    are required; the rest as in `StoreUpdateRequest`."""

    name: Annotated[str, Text(100)]
    location: Annotated[str | None, Text(200, required=False)] = None  # its settings page has none
    upi_id: Annotated[str, Text(100)]

    needs_a_change: ClassVar[bool] = False  # name and UPI id are always sent


class StorePaceRequest(RequestModel):
    """The kitchen's pace: minutes added to every ready-time estimate, whether new orders wait, and
    the cap on items taken per 15-minute slot (null: no cap)."""

    delay_minutes: Annotated[int | None, DelayMinutes(120)] = None
    paused: Annotated[bool | None, Flag(default=None)] = None
    items_per_slot: Annotated[int | None, Bounded(1, MAX_ITEMS_PER_SLOT, messages.ITEMS_PER_SLOT_INVALID,
                                                  nullable=True)] = None
    closes_at: Annotated[datetime | None, Moment(messages.CLOSES_AT_INVALID), Field(
        description="closing time for payments: no new orders from then on, and every unpaid order is due "
                    "by then (in the future, at most 24 hours ahead); null: open again")] = None

    needs_a_change: ClassVar[bool] = True


class AdminClientRequest(RequestModel):
    """Register a partner application of the `/v1` API."""

    name: Annotated[str, Text(100)]


class WebhookEndpointRequest(RequestModel):
    """Register a webhook endpoint for a partner client's orders (README, "Webhooks")."""

    client_id: Annotated[str, Text(100)]
    url: Annotated[str, Text(2000)]
    events: Annotated[str | None, Text(200, required=False),
                      Field(description="comma-separated event types; blank: all")] = None


class WebhookReplayRequest(RequestModel):
    """Which finished deliveries of an endpoint to send again: one of eventId, orderId, since (and until)."""

    event_id: Annotated[str | None, Text(100, required=False)] = None
    order_id: Annotated[str | None, Text(24, required=False)] = None
    since: Annotated[str | None, Text(40, required=False), Field(description="ISO 8601 date-time")] = None
    until: Annotated[str | None, Text(40, required=False), Field(description="ISO 8601 date-time")] = None


class ClearNoShowRequest(RequestModel):
    """Why a recorded no-show was wrong (kept with who cleared it and when)."""

    reason: Annotated[str, Text(300)]


class MenuItemRequest(RequestModel):
    name: Annotated[str, Text(100)]
    price_paise: Annotated[int, Price(), Field(alias="price", description="rupees")]
    category: Annotated[str | None, Text(50, required=False)] = None
    is_available: Annotated[bool, Flag(default=True)] = True
    cap_weight: Annotated[int, Bounded(1, MAX_CAP_WEIGHT, messages.CAP_WEIGHT_INVALID),
                          Field(description="items of the store's per-slot cap one counts for")] = 1

    @model_validator(mode="before")
    @classmethod
    def _price_first(cls, data: Any) -> Any:
        """A missing price is reported before any other field, as it always was."""
        if isinstance(data, dict) and data.get("price") is None:
            raise FieldProblem(messages.FIELD_REQUIRED, field="price")
        return data


class MenuItemPatch(RequestModel):
    """Only the fields sent change; an explicit null price is a wrong type, not "leave it"."""

    name: Annotated[str | None, Text(100, null_unchanged=True)] = None
    price_paise: Annotated[int | None, Price(required=False), Field(alias="price", description="rupees")] = None
    is_available: Annotated[bool | None, Flag(default=None)] = None
    category: Annotated[str | None, Text(50, null_unchanged=True)] = None
    cap_weight: Annotated[int | None, Bounded(1, MAX_CAP_WEIGHT, messages.CAP_WEIGHT_INVALID)] = None

    needs_a_change: ClassVar[bool] = True

    def changes(self) -> dict[str, Any]:
        """The menu item's fields to set, by their stored names."""
        values = {"name": self.name, "price_paise": self.price_paise, "is_available": self.is_available,
                  "category": self.category, "cap_weight": self.cap_weight}
        return {name: value for name, value in values.items() if value is not None}


class CartLineRequest(RequestModel):
    menu_item_id: Annotated[str, Text(24)]
    quantity: Annotated[int, WholeNumber(1, MAX_QUANTITY)]


class CheckoutSessionRequest(RequestModel):
    store_id: Annotated[str, Text(24)]
    items: Annotated[list[CartLineRequest], Items(MAX_CART_LINES)]
    special_instructions: Annotated[str | None, Text(300, required=False, multiline=True)] = None


class CreateOrderRequest(RequestModel):
    """The checkout session's token, and the UPI transaction id when the customer has it
    (`transactionId`, or `transaction_id` as CampusBite's mobile app sends it)."""

    snake_case_too: ClassVar[bool] = True

    checkout_token: Annotated[Any, Passed({"type": "string", "minLength": 1})]
    transaction_id: Annotated[Any, Passed(TRANSACTION_ID, required=False)] = None


class PaymentStatusRequest(RequestModel):
    snake_case_too: ClassVar[bool] = True  # CampusBite's mobile app sends `transaction_id`
    payment_status: Annotated[str, Text(choices=("success", "failed"))]
    transaction_id: Annotated[Any, Passed(TRANSACTION_ID, required=False)] = None


class StatusRequest(RequestModel):
    status: Annotated[str, Text(choices=tuple(status.value for status in OrderStatus))]
    reason: Annotated[str | None, Text(200, required=False)] = None


class ItemMarkRequest(RequestModel):
    """Strike an item of an order as done (`marked: true`) or take the mark back."""

    marked: Annotated[bool, Flag(default=None, required=True, null_refused=True)]


class VerifyOtpRequest(RequestModel):
    # CampusBite's staff clients confirm a pickup without the code with `{"manualConfirm": true}`.
    manual_confirm: Annotated[bool, Flag(default=False)] = False
    otp: Annotated[str | None, PickupCode(unless_manual=True, required=False)]


class PushKeysRequest(RequestModel):
    p256dh: Annotated[str, PushKey(65, "uncompressed P-256 public key (65 bytes)"), Field(alias="p256dh")]
    auth: Annotated[str, PushKey(16, "16-byte auth secret")]


class PushSubscribeRequest(RequestModel):
    """What `PushSubscription.toJSON()` gives in the browser; `expirationTime` is ignored."""

    endpoint: Annotated[str, Text(2000)]
    keys: Annotated[PushKeysRequest, Nested()]


class PushUnsubscribeRequest(RequestModel):
    endpoint: Annotated[str, Text(2000)]


class ForgotPasswordRequest(RequestModel):
    email: Annotated[str, Email()]


class ResetPasswordRequest(RequestModel):
    """The new password of `POST /api/auth/reset-password/{token}` (what CampusBite sends)."""

    password: Annotated[str, NewPassword()]


class DisplayRequest(RequestModel):
    """A new display link of a store's pickup board; the label says which screen it is for ("Counter TV")."""

    label: Annotated[str | None, Text(60, required=False)] = None


class BoardSettingsRequest(RequestModel):
    """The store's pickup-board settings: `announce` reads each new ready number aloud."""

    announce: Annotated[bool | None, Flag(default=None, null_refused=True)] = None

    needs_a_change: ClassVar[bool] = True
