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


CUSTOMER_ROLES = frozenset({Role.STUDENT, Role.FACULTY})


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


def may_see_order(principal: Principal, owner_id: str, store_id: str) -> bool:
    """Admins see every order, a customer their own, store staff their store's."""
    if principal.is_admin:
        return True
    if principal.is_customer:
        return principal.user_id == owner_id
    return principal.is_staff and principal.store_id == store_id


def may_run_store(principal: Principal, store_id: str) -> bool:
    """Menu writes and the store's live board: that store's employees, or an admin."""
    return principal.is_admin or (principal.is_staff and principal.store_id == store_id)


def sees_kitchen_view(principal: Principal) -> bool:
    """Staff and admins get the kitchen's view of an order (customer names, notes); customers not."""
    return not principal.is_customer
