"""CampusBite's names of OrderPulse's fields: its clients (its React web app and its mobile app)
read the same shapes with their own names repeated beside ours (snake_case as CampusBite's
backend formats an order, `storeName`, `owner_id`, `data.order`).

The names are a rendering option of the shapes of server/views.py (`order_detail(order, otp,
names=ORDER_NAMES)`), which add them to OrderPulse's answers and never change them; the seed bodies
(poll-status, create order, confirm-commitment's `order`) stay exactly as they are. CampusBite's
route names of our routes point at our handlers; its notification stream and its staff console
are server/http/campusbite_notifications.py and server/http/campusbite_console.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from server.domain.access import Principal, Role
from server.http.security import optional_caller as optional_caller
from server.views import Names, renamed

# CampusBite's name of an order field -> the OrderPulse field of `GET /api/orders/{id}` it repeats.
ORDER_ALIASES: dict[str, str] = {
    "_id": "id",
    "status": "orderStatus",
    "order_status": "orderStatus",
    "order_number": "orderNumber",
    "payment_status": "paymentStatus",
    "payment_reference": "paymentReference",
    "payment_method": "paymentMethod",
    "total_amount": "totalAmount",
    "transaction_id": "transactionId",
    "special_instructions": "specialInstructions",
    "requires_commitment": "requiresCommitment",
    "is_commitment_confirmed": "isCommitmentConfirmed",
    "commitment_confirmed_at": "commitmentConfirmedAt",
    "commitment_deadline_at": "commitmentDeadlineAt",
    "paid_at": "paidAt",
    "ready_at": "readyAt",
    "ready_expires_at": "readyExpiresAt",
    # The pickup code is good for as long as the ready order waits for its customer.
    "otpExpiresAt": "readyExpiresAt",
    "otp_expires_at": "readyExpiresAt",
    "is_otp_verified": "isOtpVerified",
    "picked_up_at": "pickedUpAt",
    "pickup_method": "pickupMethod",
    "cancelled_at": "cancelledAt",
    "cancellation_reason": "cancellationReason",
    # OrderPulse keeps only the customer's first name on an order (what the counter calls out).
    "customer_name": "customerFirstName",
    "created_at": "createdAt",
    "updated_at": "updatedAt",
}
# Present only when the caller may see the code (the order's customer, while it is ready).
OTP_ALIASES: dict[str, str] = {"pickup_otp": "pickupOtp", "otp": "pickupOtp"}
# Read from the order's `store` object.
STORE_ALIASES: dict[str, str] = {"storeName": "name", "store_name": "name", "storeId": "id", "store_id": "id"}
# The staff console's names of a store's and a menu item's fields.
STORE_FIELD_ALIASES: dict[str, str] = {"_id": "id", "is_active": "isActive", "upi_id": "upiId",
                                       "created_at": "createdAt"}
MENU_ITEM_ALIASES: dict[str, str] = {"_id": "id", "store_id": "storeId", "is_available": "isAvailable",
                                     "created_at": "createdAt", "updated_at": "updatedAt"}
# A signed-in user as its profile screens read them (CampusBite's backend formats a user so).
USER_ALIASES: dict[str, str] = {"_id": "id", "register_number": "registerNumber", "employee_id": "employeeId",
                                "phone_number": "phoneNumber", "is_email_verified": "isEmailVerified",
                                "no_show_count": "noShowCount", "trust_tier": "trustTier",
                                "ordering_restricted_until": "orderingRestrictedUntil", "store_id": "storeId",
                                "created_at": "createdAt"}


# Seed 001's new order repeats its `id` where CampusBite's mobile checkout reads it.
CREATED_ORDER_ALIASES: dict[str, str] = {"_id": "id"}
# An order as CampusBite reads it: its fields, its pickup code's, and its store's (from the order's `store`).
ORDER_NAMES: Names = {**ORDER_ALIASES, **OTP_ALIASES,
                      **{alias: f"store.{source}" for alias, source in STORE_ALIASES.items()}}
# CampusBite's checkout reads the commitment rule as `requiresCommitmentBeforePrep`.
CHECKOUT_SESSION_NAMES: Names = {"noShowPolicy.requiresCommitmentBeforePrep": "noShowPolicy.requiresCommitment"}


def named_types(types: Mapping[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """CampusBite's name of each field in `types` it repeats, typed as that field: what the
    document states of the names `_aliased` adds."""
    return {alias: Annotated[types[source], Field(description=f"CampusBite's name of `{source}`")]
            for alias, source in aliases.items() if source in types}


def staff_pickup_code(detail: dict[str, Any], otp: str) -> dict[str, Any]:
    """A ready order as its store's staff get it: `pickup_otp`, the expected code CampusBite's staff
    page shows in its pickup dialog to compare with the customer's (as CampusBite's backend sends
    it to the store). Only that name: OrderPulse's own kitchen asks for the code instead."""
    return {**detail, "pickup_otp": otp}


# What `store_fields` adds to a store.
STORE_OWNER_TYPES: dict[str, Any] = {
    "owner_id": Annotated[str | None, Field(description="CampusBite's owner: the caller on their own store, else null")],
    "owner_name": Annotated[str, Field(description="the caller, on their own store")],
}


def store_fields(shown: dict[str, Any], caller: Principal | None) -> dict[str, Any]:
    """A store with CampusBite's names of its fields, for every caller. OrderPulse stores have staff,
    not one owner: `owner_id` (with `owner_name`) names the caller on their own store, which is how
    CampusBite's console finds "my store", and is null on any other."""
    own = caller is not None and caller.is_staff and caller.store_id == shown["id"]
    owner = {"owner_id": caller.user_id, "owner_name": caller.name} if own and caller else {"owner_id": None}
    return {**renamed(shown, STORE_FIELD_ALIASES), **owner}


def store_list(stores: list[dict[str, Any]], caller: Principal | None) -> dict[str, Any] | list[dict[str, Any]]:
    """`GET /api/stores`: a bare list, as OrderPulse's pages read it; for store staff, CampusBite's
    console shape, `{stores: [...]}`."""
    shown = [store_fields(store, caller) for store in stores]
    if caller is None or caller.role != Role.STORE_EMPLOYEE:
        return shown
    return {"stores": shown}


def _campusbite_reader(caller: Principal | None) -> bool:
    """A signed-in student, faculty member or store employee: the roles CampusBite's clients have
    (they always send their token). Anonymous callers (OrderPulse's pages) and admins get the contract."""
    return caller is not None and not caller.is_admin


def menu_list(items: list[dict[str, Any]], caller: Principal | None) -> dict[str, Any] | list[dict[str, Any]]:
    """`GET /api/stores/{id}/menu`: the contract's bare list of items (each shaped with `MENU_ITEM_ALIASES`);
    to CampusBite's readers its shape `{menuItems: [...]}`, which holds the sold-out items too
    (`menu_lists_every_item`)."""
    return {"menuItems": items} if _campusbite_reader(caller) else items


def menu_lists_every_item(caller: Principal | None) -> bool:
    """CampusBite lists sold-out items with an "Unavailable" badge (its staff, to switch them back),
    so its shape holds every item, each with `is_available`."""
    return _campusbite_reader(caller)
