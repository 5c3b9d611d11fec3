"""Who may do what: the roles, the verified caller, and the one access policy every adapter asks.

Pure rules on plain values: the HTTP handlers, the hub and the services all decide here, so a
rule changes in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    STUDENT = "student"
    FACULTY = "faculty"
    STORE_EMPLOYEE = "store_employee"
    ADMIN = "admin"


# In the order messages list them: the roles that register themselves and place orders.
CUSTOMER_ROLES = (Role.STUDENT, Role.FACULTY)
# The roles only an admin (or the command line) gives.
ADMIN_GIVEN_ROLES = (Role.STORE_EMPLOYEE, Role.ADMIN)


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of a request or a socket."""

    user_id: str
    role: Role
    store_id: str | None
    name: str
    expires_at: float  # epoch seconds, when the caller's access token expires

    @property
    def is_customer(self) -> bool:
        return self.role in CUSTOMER_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_staff(self) -> bool:
        return self.role == Role.STORE_EMPLOYEE

    @property
    def first_name(self) -> str:
        """What the kitchen calls the customer: the first word of the name."""
        words = self.name.split()
        return words[0] if words else self.name


def may_place_orders(principal: Principal) -> bool:
    """Students and faculty order (and have a trust standing); staff and admins run stores."""
    return principal.is_customer


def may_see_order(principal: Principal, owner_id: str, store_id: str) -> bool:
    """Admins see every order, a customer their own, store staff their store's."""
    if principal.is_admin:
        return True
    if principal.is_customer:
        return principal.user_id == owner_id
    return principal.is_staff and principal.store_id == store_id


def may_see_every_order(principal: Principal) -> bool:
    """Admins: only to them may a missing order be "not found"; to anyone else it is another's."""
    return principal.is_admin


def sees_pickup_code(principal: Principal, owner_id: str) -> bool:
    """The pickup code is shown to the customer who owns the order (`pickupOtp`, `otp`)."""
    return principal.is_customer and principal.user_id == owner_id


def compares_pickup_code(principal: Principal, store_id: str) -> bool:
    """The order's store's staff get the expected code too, as CampusBite's backend gives it, for its
    pickup dialog to compare with the customer's by eye. The server records a code pickup only when
    the code is sent to it and matches; a pickup confirmed by eye stays a manual one."""
    return principal.is_staff and principal.store_id == store_id


def listing_scope(principal: Principal, requested_store_id: str | None) -> dict[str, str | None]:
    """What every order a listing returns must match (`user_id` is the owner): a customer's own,
    staff their store's, an admin the requested store's, or every order."""
    if principal.is_customer:
        return {"user_id": principal.user_id}
    if principal.is_staff:
        return {"store_id": principal.store_id}
    return {"store_id": requested_store_id} if requested_store_id else {}


def may_run_store(principal: Principal, store_id: str) -> bool:
    """Menu writes and the store's live board: that store's employees, or an admin."""
    return principal.is_admin or (principal.is_staff and principal.store_id == store_id)


def sees_kitchen_view(principal: Principal) -> bool:
    """Staff and admins get the kitchen's view of an order (customer names, notes); customers not."""
    return not principal.is_customer
