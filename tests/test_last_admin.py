"""At least one active admin always remains: the last one cannot be disabled or demoted, also when
two admins disable or demote each other at the same moment through two servers (two app instances
with their own services and database clients, as two processes have, interleaved on one event loop;
the guard is a claim in MongoDB, so what decides is the database, not the process boundary)."""

from __future__ import annotations

import asyncio

import httpx

from server.domain import messages
from server.services.accounts import ADMIN_SET_CLAIM, ADMIN_SET_CLAIMS
from server.models import User
from tests.support import Actor, Api

LAST_ADMIN = {"success": False, "message": messages.LAST_ADMIN}
ROUNDS = 12


async def set_active(api: Api, admin: Actor, user_id: str, active: bool) -> httpx.Response:
    return await api.patch(f"/api/admin/users/{user_id}", admin, json={"isActive": active})


async def set_role(api: Api, admin: Actor, user_id: str, role: str, store_id: str | None = None) -> httpx.Response:
    return await api.request("PUT", f"/api/admin/users/{user_id}/role", admin,
                             json={"role": role, **({"storeId": store_id} if store_id else {})})


async def active_admins(api: Api, admin: Actor) -> list[str]:
    response = await api.get("/api/admin/users?role=admin", admin)
    assert response.status_code == 200, response.text
    return [user["id"] for user in response.json()["data"]["users"] if user["isActive"]]


async def test_two_admins_disabling_or_demoting_each_other_at_once_leave_exactly_one(api_factory, clock):
    # Two servers on one database, each with its own account service and client; no user cache, so a
    # re-enabled admin is seen at once by both.
    first = await api_factory(clock=clock, user_cache_seconds=0)
    second = await api_factory(clock=clock, user_cache_seconds=0)
    ada, bea = await first.admin(), await first.admin()
    store = await first.store(ada)
    for round_number in range(ROUNDS):
        demoting = round_number % 2 == 1
        if demoting:
            answers = await asyncio.gather(set_role(first, ada, bea.id, "store_employee", store.id),
                                           set_role(second, bea, ada.id, "store_employee", store.id))
        else:
            answers = await asyncio.gather(set_active(first, ada, bea.id, False),
                                           set_active(second, bea, ada.id, False))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 409], (round_number, [answer.text for answer in answers])
        refused = next(answer for answer in answers if answer.status_code == 409)
        assert refused.json() == LAST_ADMIN
        survivor, disabled = (ada, bea) if answers[0].status_code == 200 else (bea, ada)
        assert await active_admins(first, survivor) == [survivor.id]
        # Back to two admins for the next round; tokens from before a disable stay dead, so both
        # sign in again a second later.
        if demoting:
            assert (await set_role(first, survivor, disabled.id, "admin")).status_code == 200
        else:
            assert (await set_active(first, survivor, disabled.id, True)).status_code == 200
        clock.advance(1)
        ada, bea = await first.login(ada.user["email"]), await first.login(bea.user["email"])


async def test_the_last_admin_cannot_disable_itself_and_the_refusal_changes_nothing(api):
    ada = await api.admin()
    customer = await api.customer()
    response = await set_active(api, ada, ada.id, False)
    assert (response.status_code, response.json()["message"]) == (400, messages.CANNOT_DISABLE_SELF)
    assert await active_admins(api, ada) == [ada.id]
    # The guard does not get in the way of other accounts.
    assert (await set_active(api, ada, customer.id, False)).status_code == 200


async def test_an_admin_can_be_disabled_while_another_active_one_remains(api):
    ada, bea, cy = await api.admin(), await api.admin(), await api.admin()
    assert (await set_active(api, ada, bea.id, False)).status_code == 200
    assert (await set_active(api, ada, cy.id, False)).status_code == 200
    assert await active_admins(api, ada) == [ada.id]
    # Re-enabling needs no claim; then Ada is no longer the last one.
    assert (await set_active(api, ada, bea.id, True)).status_code == 200
    assert (await set_active(api, ada, cy.id, True)).status_code == 200


async def test_a_claim_left_by_a_crashed_process_is_taken_over_once_its_lease_passed(api_factory, clock):
    api = await api_factory(clock=clock)
    ada, bea = await api.admin(), await api.admin()
    claims = User.get_pymongo_collection().database.get_collection(ADMIN_SET_CLAIMS)
    await claims.insert_one({"_id": ADMIN_SET_CLAIM, "holder": "a process that died",
                             "expires": clock.now().timestamp() + 5})
    pending = asyncio.create_task(set_active(api, ada, bea.id, False))
    clock.advance(6)
    response = await pending
    assert response.status_code == 200, response.text
    assert await claims.find_one({"_id": ADMIN_SET_CLAIM}) is None
    assert await active_admins(api, ada) == [ada.id]


async def test_the_last_admin_cannot_be_demoted_and_staff_move_between_roles(api):
    ada = await api.admin()
    store = await api.store(ada)
    response = await set_role(api, ada, ada.id, "store_employee", store.id)
    assert (response.status_code, response.json()) == (409, LAST_ADMIN)
    assert await active_admins(api, ada) == [ada.id]

    # A store employee made an admin; then Ada is no longer the last one and can step down.
    promoted = await set_role(api, ada, store.staff.id, "admin")
    assert promoted.status_code == 200, promoted.text
    assert (promoted.json()["data"]["role"], promoted.json()["data"]["storeId"]) == ("admin", None)
    assert (await api.get("/api/admin/users", store.staff)).status_code == 200
    demoted = await set_role(api, ada, ada.id, "store_employee", store.id)
    assert demoted.status_code == 200, demoted.text
    assert (demoted.json()["data"]["role"], demoted.json()["data"]["storeId"]) == ("store_employee", store.id)
    assert (await api.get("/api/admin/users", ada)).status_code == 403
    assert await active_admins(api, store.staff) == [store.staff.id]


async def test_bad_role_changes_are_refused_and_change_nothing(api):
    ada = await api.admin()
    store = await api.store(ada)
    customer = await api.customer()
    cases = [
        (customer.id, {"role": "admin"}, 400, messages.ROLE_CHANGE_NOT_STAFF),
        (store.staff.id, {"role": "store_employee"}, 400, messages.STORE_REQUIRED_FOR_STAFF),
        (store.staff.id, {"role": "store_employee", "storeId": "65f7a8b9c1234567890abcde"}, 404,
         messages.STORE_NOT_FOUND),
        (store.staff.id, {"role": "student"}, 400, "role must be one of: store_employee, admin."),
        ("65f7a8b9c1234567890abcde", {"role": "admin"}, 404, messages.ADMIN_USER_NOT_FOUND),
    ]
    for user_id, body, status, message in cases:
        response = await api.request("PUT", f"/api/admin/users/{user_id}/role", ada, json=body)
        assert (response.status_code, response.json()["message"]) == (status, message), body
    for actor in (customer, store.staff):
        assert (await set_role(api, actor, actor.id, "admin")).status_code == 403
    assert (await api.get("/api/users/me", customer)).json()["data"]["role"] == "student"
    assert (await api.get("/api/users/me", store.staff)).json()["data"]["role"] == "store_employee"
