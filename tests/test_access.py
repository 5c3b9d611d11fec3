"""The access policy (server/domain/access.py): who may see, list and run what, without a server."""

from __future__ import annotations

import pytest

from server.domain.access import (
    CUSTOMER_ROLES, Principal, Role, listing_scope, may_place_orders, may_run_store, may_see_every_order,
    may_see_order, sees_kitchen_view, sees_pickup_code,
)

STORE, OTHER_STORE = "s" * 24, "t" * 24


def caller(role: Role, user_id: str = "u1", store_id: str | None = None, name: str = "Asha Rao") -> Principal:
    return Principal(user_id=user_id, role=role, store_id=store_id, name=name, expires_at=0.0)


ADMIN = caller(Role.ADMIN, "admin")
STAFF = caller(Role.STORE_EMPLOYEE, "staff", STORE)
STUDENT = caller(Role.STUDENT, "u1")
FACULTY = caller(Role.FACULTY, "u2")


@pytest.mark.parametrize(("principal", "owner", "store", "allowed"), [
    (ADMIN, "anyone", OTHER_STORE, True),
    (STUDENT, "u1", STORE, True),
    (STUDENT, "u2", STORE, False),  # another customer's order, even at the same store
    (FACULTY, "u2", OTHER_STORE, True),
    (STAFF, "u1", STORE, True),
    (STAFF, "u1", OTHER_STORE, False),
    (caller(Role.STORE_EMPLOYEE, "staff", None), "u1", STORE, False),  # staff without a store
])
def test_who_sees_an_order(principal, owner, store, allowed):
    assert may_see_order(principal, owner, store) is allowed


def test_only_that_stores_staff_and_admins_run_a_store():
    assert may_run_store(ADMIN, OTHER_STORE) and may_run_store(STAFF, STORE)
    assert not may_run_store(STAFF, OTHER_STORE) and not may_run_store(STUDENT, STORE)


def test_listings_are_scoped_by_role():
    assert listing_scope(STUDENT, OTHER_STORE) == {"user_id": "u1"}  # a customer's storeId is ignored
    assert listing_scope(STAFF, OTHER_STORE) == {"store_id": STORE}  # staff always see their own store
    assert listing_scope(ADMIN, OTHER_STORE) == {"store_id": OTHER_STORE}
    assert listing_scope(ADMIN, None) == {}


def test_pickup_code_and_kitchen_view_go_to_different_audiences():
    assert sees_pickup_code(STUDENT, "u1") and not sees_pickup_code(STUDENT, "u2")
    assert not sees_pickup_code(caller(Role.STORE_EMPLOYEE, "u1", STORE), "u1")
    assert not sees_pickup_code(ADMIN, "admin")
    assert sees_kitchen_view(STAFF) and sees_kitchen_view(ADMIN) and not sees_kitchen_view(FACULTY)


def test_customers_order_and_only_admins_learn_an_order_is_missing():
    assert [may_place_orders(caller(role)) for role in Role] == [True, True, False, False]
    assert CUSTOMER_ROLES == (Role.STUDENT, Role.FACULTY)
    assert may_see_every_order(ADMIN) and not may_see_every_order(STAFF) and not may_see_every_order(STUDENT)


def test_first_name_is_the_first_word():
    assert caller(Role.STUDENT, name="Asha  Rao").first_name == "Asha"
    assert caller(Role.STUDENT, name="   ").first_name == "   "
    assert Role("store_employee") is Role.STORE_EMPLOYEE and f"{Role.ADMIN}" == "admin"
