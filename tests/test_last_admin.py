"""At least one active admin always remains: the last one cannot be disabled, also when two admins
disable each other at the same moment on two processes."""

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


async def active_admins(api: Api, admin: Actor) -> list[str]:
    response = await api.get("/api/admin/users?role=admin", admin)
    assert response.status_code == 200, response.text
    return [user["id"] for user in response.json()["data"]["users"] if user["isActive"]]


async def test_two_admins_disabling_each_other_at_once_leave_exactly_one(api_factory, clock):
    # Two processes on one database, each with its own account service; no user cache, so a
    # re-enabled admin is seen at once by both.
    first = await api_factory(clock=clock, user_cache_seconds=0)
    second = await api_factory(clock=clock, user_cache_seconds=0)
    ada, bea = await first.admin(), await first.admin()
    for round_number in range(ROUNDS):
        answers = await asyncio.gather(set_active(first, ada, bea.id, False), set_active(second, bea, ada.id, False))
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 409], (round_number, [answer.text for answer in answers])
        refused = next(answer for answer in answers if answer.status_code == 409)
        assert refused.json() == LAST_ADMIN
        survivor, disabled = (ada, bea) if answers[0].status_code == 200 else (bea, ada)
        assert await active_admins(first, survivor) == [survivor.id]
        # Back to two admins for the next round; tokens from before a disable stay dead, so both
        # sign in again a second later.
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
