"""Admins list, disable and re-enable accounts; a disabled account stops working everywhere at once:
its tokens on every process, its refresh tokens, its sign-in, its open sockets and streams."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from pymongo import monitoring
import pytest

from tests.harness import RedisServer
from tests.realtime.conftest import Deployment, Watcher, deployment_env, served
from tests.support import PASSWORD, Api, until

USER_NOT_FOUND = {"success": False, "message": "Invalid token. User not found."}


async def disable(api: Api, admin, user_id: str, active: bool = False) -> httpx.Response:
    return await api.patch(f"/api/admin/users/{user_id}", admin, json={"isActive": active})


# --- listing and changing accounts ---------------------------------------------------------------

async def test_admins_list_accounts_newest_first_by_role_and_search(api):
    admin = await api.admin()
    store = await api.store(admin)
    asha = await api.customer("Asha Rao")
    ravi = await api.customer("Ravi Menon", role="faculty")
    page = (await api.get("/api/admin/users?limit=2", admin)).json()["data"]
    assert (page["page"], page["limit"], page["total"], page["pages"]) == (1, 2, 4, 2)
    assert [u["id"] for u in page["users"]] == [ravi.id, asha.id]
    assert all(u["isActive"] is True and "passwordHash" not in u for u in page["users"])
    staff = (await api.get("/api/admin/users?role=store_employee", admin)).json()["data"]
    assert [u["id"] for u in staff["users"]] == [store.staff.id] and staff["total"] == 1
    found = (await api.get("/api/admin/users?search=ASHA", admin)).json()["data"]
    assert [u["id"] for u in found["users"]] == [asha.id]
    by_email = (await api.get(f"/api/admin/users?search={ravi.user['email'].upper()}", admin)).json()["data"]
    assert [u["id"] for u in by_email["users"]] == [ravi.id]
    # A search is text, never a pattern.
    assert (await api.get("/api/admin/users?search=.*", admin)).json()["data"]["total"] == 0


async def test_only_admins_list_or_change_accounts(api):
    store = await api.store()
    customer = await api.customer()
    for actor in (customer, store.staff):
        assert (await api.get("/api/admin/users", actor)).status_code == 403
        assert (await disable(api, actor, customer.id)).status_code == 403
    assert (await api.get("/api/admin/users")).status_code == 401
    assert (await api.get("/api/users/me", customer)).status_code == 200


@pytest.mark.parametrize("path, body, status, message", [
    ("/api/admin/users/{id}", {}, 400, "isActive is required and must be true or false."),
    ("/api/admin/users/{id}", {"isActive": "no"}, 400, "isActive is required and must be true or false."),
    ("/api/admin/users/65f7a8b9c1234567890abcde", {"isActive": False}, 404, "User not found."),
    ("/api/admin/users/not-an-id", {"isActive": False}, 404, "User not found."),
    ("/api/admin/users/{admin}", {"isActive": False}, 400, "You cannot disable your own account."),
])
async def test_bad_changes_name_the_field_and_change_nothing(api, path, body, status, message):
    admin = await api.admin()
    customer = await api.customer()
    response = await api.patch(path.format(id=customer.id, admin=admin.id), admin, json=body)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert (await api.get("/api/users/me", customer)).status_code == 200
    assert (await api.get("/api/users/me", admin)).status_code == 200


@pytest.mark.parametrize("query, message", [
    ("page=0", "page must be a whole number from 1 to 10000."),
    ("limit=101", "limit must be a whole number from 1 to 100."),
    ("limit=x", "limit must be a whole number from 1 to 100."),
    ("role=chef", "role must be one of: student, faculty, store_employee, admin."),
    ("search=" + "a" * 101, "search must be at most 100 characters."),
])
async def test_bad_listing_queries_are_400_naming_the_parameter(api, query, message):
    admin = await api.admin()
    response = await api.get(f"/api/admin/users?{query}", admin)
    assert (response.status_code, response.json()["message"]) == (400, message)


# --- a disabled account, in one process ----------------------------------------------------------

async def test_a_disabled_account_is_refused_at_once_tokens_refresh_and_sign_in(api):
    admin = await api.admin()
    store = await api.store(admin)
    customer = await api.customer()
    order = await api.place_order(customer, store)
    poll = f"/api/orders/{order['id']}/poll-status"
    # Known caller and order: the next poll would be answered by the fast path from memory.
    assert (await api.get(poll, customer)).status_code == 200
    assert (await api.get("/api/users/me", customer)).status_code == 200

    response = await disable(api, admin, customer.id)
    assert response.status_code == 200 and response.json()["data"]["isActive"] is False

    for answer in (await api.get(poll, customer), await api.get("/api/users/me", customer),
                   await api.checkout(customer, store)):
        assert (answer.status_code, answer.json()) == (401, USER_NOT_FOUND)
    refreshed = await api.post("/api/auth/refresh", json={"refreshToken": customer.refresh_token})
    assert (refreshed.status_code, refreshed.json()["message"]) == (401, "Invalid or expired refresh token.")
    login = await api.post("/api/auth/login", json={"email": customer.user["email"], "password": PASSWORD})
    assert (login.status_code, login.json()["message"]) == (403, "This account is disabled. Contact an administrator.")
    listed = (await api.get("/api/admin/users?role=student", admin)).json()["data"]["users"]
    assert [u["isActive"] for u in listed if u["id"] == customer.id] == [False]


async def test_re_enabling_allows_sign_in_again_but_never_revives_old_tokens(api):
    admin = await api.admin()
    customer = await api.customer()
    assert (await disable(api, admin, customer.id)).status_code == 200
    response = await disable(api, admin, customer.id, active=True)
    assert response.status_code == 200 and response.json()["data"]["isActive"] is True
    assert (await api.get("/api/users/me", customer)).json() == USER_NOT_FOUND
    refreshed = await api.post("/api/auth/refresh", json={"refreshToken": customer.refresh_token})
    assert refreshed.status_code == 401
    # Tokens carry whole seconds: one issued in the disable's own second is refused too, so a
    # sign-in from the next second on is what works.
    await until(lambda: _fresh_token_works(api, customer.user["email"]), timeout=3, interval=0.2,
                message="a token from after the disable")


async def _fresh_token_works(api: Api, email: str) -> bool:
    return (await api.get("/api/users/me", await api.login(email))).status_code == 200


async def test_a_disabled_accounts_sockets_close_4401_and_its_event_streams_end(api):
    admin = await api.admin()
    store = await api.store(admin)
    customer = await api.customer()
    order = await api.place_order(customer, store)
    async with served(api.app) as address:
        by_query = await Watcher.open(f"ws://{address}/ws", customer.access_token)
        by_frame = await Watcher.open(f"ws://{address}/ws")
        await by_frame.send({"type": "auth", "token": customer.access_token})
        staff_socket = await Watcher.open(f"ws://{address}/ws", store.staff.access_token)
        for watcher in (by_query, by_frame):
            assert (await watcher.subscribe(orderIds=[order["id"]]))["type"] == "snapshot"
        assert (await staff_socket.subscribe(storeId=store.id))["type"] == "snapshot"
        lines: list[str] = []

        async def read_stream():
            async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as client, client.stream(
                    "GET", f"http://{address}/api/orders/{order['id']}/events", headers=customer.headers) as stream:
                async for line in stream.aiter_lines():
                    lines.append(line)

        stream_task = asyncio.create_task(read_stream())
        await until(lambda: any(line.startswith("event: snapshot") for line in lines), message="the SSE snapshot")

        assert (await disable(api, admin, customer.id)).status_code == 200
        assert await by_query.wait_closed() == 4401
        assert await by_frame.wait_closed() == 4401
        await asyncio.wait_for(stream_task, 5)  # the stream ended: the server closed it
        # Other people's sockets are untouched.
        assert (await staff_socket.ask({"type": "ping"}))["type"] == "pong"
        await staff_socket.close()


# --- across processes -------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def two_servers(mongo, redis_server, tmp_path):
    deployment = Deployment(tmp_path, deployment_env(mongo, redis_server), redis_server)
    a, b = deployment.server(), deployment.server()
    await deployment.start(a, b)
    try:
        admin = await deployment.create_admin(a)
        yield deployment, deployment.api(a), deployment.api(b), admin, b
    finally:
        await deployment.close()


async def test_disabled_on_one_process_refused_on_another_within_a_second(mongo, redis_server, tmp_path):
    async with two_servers(mongo, redis_server, tmp_path) as (deployment, on_a, on_b, admin, b):
        customer = await on_b.customer()
        socket = await Watcher.open(b.ws_url)
        await socket.send({"type": "auth", "token": customer.access_token})
        assert (await socket.ask({"type": "ping"}))["type"] == "pong"
        assert (await on_b.get("/api/users/me", customer)).status_code == 200
        assert (await disable(on_a, admin, customer.id)).status_code == 200
        # Timed on purpose: the contract is "within 1 s" on every process.
        await until(lambda: _refused(on_b, customer), timeout=1.0, interval=0.05, message="B to refuse the token")
        assert await socket.wait_closed(timeout=1.0) == 4401
        login = await on_b.post("/api/auth/login", json={"email": customer.user["email"], "password": PASSWORD})
        assert login.status_code == 403


async def test_without_the_broker_message_the_cache_lifetime_still_bounds_it(mongo, tmp_path):
    # No Redis: each process has its own in-memory broker, so B never hears of the change.
    async with two_servers(mongo, None, tmp_path) as (deployment, on_a, on_b, admin, b):
        customer = await on_b.customer()
        assert (await on_b.get("/api/users/me", customer)).status_code == 200
        assert (await disable(on_a, admin, customer.id)).status_code == 200
        # Timed on purpose: USER_CACHE_SECONDS (1 s) bounds it, plus one request.
        await until(lambda: _refused(on_b, customer), timeout=2.0, interval=0.05, message="B to refuse the token")


async def _refused(api: Api, actor) -> bool:
    response = await api.get("/api/users/me", actor)
    return response.status_code == 401 and response.json() == USER_NOT_FOUND


async def test_the_new_routes_answer_what_the_openapi_document_says(api):
    from server.http.openapi import openapi_document
    from tests.test_openapi import check

    document = openapi_document()
    admin = await api.admin()
    customer = await api.customer()
    calls = [
        ("/api/admin/users", "get", await api.get("/api/admin/users", admin)),
        ("/api/admin/users", "get", await api.get("/api/admin/users?page=0", admin)),
        ("/api/admin/users/{user_id}", "patch", await disable(api, admin, customer.id)),
        ("/api/admin/users/{user_id}", "patch", await disable(api, admin, "65f7a8b9c1234567890abcde")),
        ("/api/auth/stream-ticket", "post", await api.post("/api/auth/stream-ticket", admin)),
        ("/api/auth/stream-ticket", "post", await api.post("/api/auth/stream-ticket", customer)),
    ]
    for path, method, response in calls:
        check(document, path, method, response)
    assert [response.status_code for _, _, response in calls] == [200, 400, 200, 404, 201, 401]


class _UserReads(monitoring.CommandListener):
    """Counts the driver's reads of the users collection."""

    def __init__(self) -> None:
        self.count = 0

    def started(self, event) -> None:
        if event.command_name == "find" and event.command.get("find") == "users":
            self.count += 1

    def succeeded(self, event) -> None:
        pass

    def failed(self, event) -> None:
        pass


async def test_concurrent_requests_of_one_caller_share_one_read_of_the_user(api_factory):
    reads = _UserReads()
    monitoring.register(reads)  # global: the app's driver client is created after this
    api = await api_factory(user_cache_seconds=0)  # every request verifies its caller anew
    customer = await api.customer()
    before = reads.count
    principals = await asyncio.gather(*(api.runtime.accounts.authenticate(customer.access_token)
                                        for _ in range(20)))
    assert {p.user_id for p in principals} == {customer.id}
    assert reads.count - before == 1


async def test_sockets_of_a_process_that_missed_the_change_close_once_redis_is_back(mongo, tmp_path):
    redis = RedisServer(tmp_path / "redis").start()
    try:
        async with two_servers(mongo, redis, tmp_path / "servers") as (deployment, on_a, on_b, admin, b):
            customer = await on_b.customer()
            socket = await Watcher.open(b.ws_url)
            await socket.send({"type": "auth", "token": customer.access_token})
            assert (await socket.ask({"type": "ping"}))["type"] == "pong"
            redis.kill()
            # A cannot tell B: the change message is lost, not queued.
            assert (await disable(on_a, admin, customer.id)).status_code == 200
            await until(lambda: _refused(on_b, customer), timeout=5, message="B to refuse the token")
            assert not socket.closed
            redis.start()  # same port: B reconnects and re-reads the accounts of its sockets
            assert await socket.wait_closed(timeout=20) == 4401
    finally:
        redis.kill()
