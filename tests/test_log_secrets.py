"""No token, password or pickup code reaches a log line, and the pages keep tokens out of URLs:
sockets authenticate with their first frame, event streams with a single-use ticket."""

from __future__ import annotations

import io
import logging
import re

import httpx
import pytest
from uvicorn.logging import AccessFormatter

from server.logging_filter import SecretFilter, install_secret_filter, redact
from tests.harness import ServerProcess
from tests.realtime.conftest import Deployment, Watcher, deployment_env
from tests.support import PASSWORD, until
from tests.test_account_admin import served

JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlX2J5dGVz"


# --- the filter ------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, secret", [
    (f'127.0.0.1:5000 - "WebSocket /ws?token={JWT}" [accepted]', JWT),
    ('GET /api/stores/1/events?ticket=Zm9vYmFyYmF6cXV4 HTTP/1.1', "Zm9vYmFyYmF6cXV4"),
    ('body {"email": "a@b.c", "password": "correct-horse-1"}', "correct-horse-1"),
    ("{'refreshToken': 'q1w2e3r4t5y6u7i8o9p0', 'user': 1}", "q1w2e3r4t5y6u7i8o9p0"),
    ("headers [(b'authorization', b'Bearer abc.def.ghi')]", "abc.def.ghi"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
    ('verify-otp {"otp": "482913"}', "482913"),
    ("pickupOtp=482913&x=1", "482913"),
    (f"a bare token {JWT} in a sentence", JWT),
    # The MongoDB driver's debug log: a command document as JSON inside JSON.
    (r'"command": "{\"insert\": \"users\", \"password_hash\": \"$argon2id$v=19$m=65536\"}"', "$argon2id"),
])
def test_redact_removes_each_kind_of_secret(line, secret):
    clean = redact(line)
    assert secret not in clean and "[redacted]" in clean


def test_a_secret_split_between_the_format_and_its_argument_is_redacted():
    record = logging.LogRecord("orderpulse", logging.INFO, __file__, 1, "refresh token=%s rotated", ("q1w2e3r4",), None)
    SecretFilter().filter(record)
    assert record.getMessage() == "refresh token=[redacted] rotated"


def test_uvicorn_access_lines_keep_their_format_with_the_token_redacted():
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"/api/orders/1/events?token={JWT}", "1.1", 200), None)
    SecretFilter().filter(record)
    line = AccessFormatter("%(client_addr)s - \"%(request_line)s\" %(status_code)s", use_colors=False).format(record)
    assert line == '127.0.0.1:5000 - "GET /api/orders/1/events?token=[redacted] HTTP/1.1" 200 OK'


def test_tracebacks_are_redacted_too():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("orderpulse.test-secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install_secret_filter()
        handler.addFilter(SecretFilter())
        try:
            raise ValueError(f"bad token {JWT}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    assert JWT not in stream.getvalue() and "ValueError: bad token [redacted]" in stream.getvalue()


# --- a whole flow against a real server at LOG_LEVEL=debug ------------------------------------------

async def _sse_first_frame(client: httpx.AsyncClient, url: str, **kwargs) -> int:
    async with client.stream("GET", url, **kwargs) as response:
        if response.status_code == 200:
            async for line in response.aiter_lines():
                if line.startswith("event: snapshot"):
                    break
        return response.status_code


async def test_a_full_flow_at_debug_level_logs_no_token_password_or_pickup_code(mongo, tmp_path):
    deployment = Deployment(tmp_path, deployment_env(mongo, None, LOG_LEVEL="debug"))
    server: ServerProcess = deployment.server()
    await deployment.start(server)
    secrets: list[str] = []
    try:
        admin = await deployment.create_admin(server)
        api = deployment.api(server)
        store = await api.store(admin)
        register = await api.post("/api/auth/register", json={
            "name": "Asha Rao", "email": "asha-logs@campus.test", "password": PASSWORD, "role": "student",
            "registerNumber": "21CS1001"})
        registered = register.json()["data"]
        signed_in = await api.login("asha-logs@campus.test")
        order = await api.place_order(signed_in, store)
        order_id = order["id"]

        by_query = await Watcher.open(server.ws_url, signed_in.access_token)
        by_frame = await Watcher.open(server.ws_url)
        await by_frame.send({"type": "auth", "token": signed_in.access_token})
        kitchen = await Watcher.open(server.ws_url, store.staff.access_token)
        for watcher in (by_query, by_frame):
            assert (await watcher.subscribe(orderIds=[order_id]))["type"] == "snapshot"
        assert (await kitchen.subscribe(storeId=store.id))["type"] == "snapshot"

        ticket = (await api.post("/api/auth/stream-ticket", signed_in)).json()["data"]["ticket"]
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            events = f"/api/orders/{order_id}/events"
            assert await _sse_first_frame(client, f"{events}?token={signed_in.access_token}") == 200
            assert await _sse_first_frame(client, f"{events}?ticket={ticket}") == 200
            assert await _sse_first_frame(client, events, headers=signed_in.headers) == 200
            assert await _sse_first_frame(client, f"{events}?token=not-a-token") == 401

        await api.advance(store, order_id, "paid", "processing", "ready")
        otp = await api.otp_of(signed_in, order_id)
        wrong = "000000" if otp != "000000" else "111111"
        assert (await api.post(f"/api/orders/{order_id}/verify-otp", store.staff, json={"otp": wrong})).status_code == 400
        assert (await api.post(f"/api/orders/{order_id}/verify-otp", store.staff, json={"otp": otp})).status_code == 200
        await until(lambda: by_query.status(order_id) == "picked_up", message="the pickup event")

        rotated = await api.post("/api/auth/refresh", json={"refreshToken": signed_in.refresh_token})
        new_refresh = rotated.json()["data"]["refreshToken"]
        await api.post("/api/auth/logout", json={"refreshToken": new_refresh})
        assert (await api.get("/api/users/me", headers={"Authorization": f"Bearer {signed_in.access_token}x"})).status_code == 401
        for watcher in (by_query, by_frame, kitchen):
            await watcher.close()
        secrets = [registered["accessToken"], registered["refreshToken"], signed_in.access_token, signed_in.refresh_token,
                   rotated.json()["data"]["accessToken"], new_refresh, store.staff.access_token,
                   admin.access_token, ticket, PASSWORD]
    finally:
        server.stop()  # SIGTERM: the log is flushed and complete
        await deployment.close()
    log = server.log_path.read_text()
    assert "DEBUG" in log, "the server did not log at debug level"
    # The line that leaked before: uvicorn logs every socket's path and query string.
    assert '"WebSocket /ws?token=[redacted]" [accepted]' in log
    assert '"WebSocket /ws" [accepted]' in log
    leaked = [secret[:12] + "…" for secret in secrets if secret in log]
    assert leaked == [], f"secrets in the log: {leaked}"
    # Six digits also turn up inside ObjectIds, hashes and tokens (a CI run found this code inside one):
    # the code counts only where no letter or digit touches it.
    found = re.search(rf"(?<![0-9A-Za-z]){otp}(?![0-9A-Za-z])", log)
    assert found is None, f"the pickup code is in the log: …{log[max(0, found.start() - 60):found.end() + 20]}…"
    assert "$argon2" not in log, "a password hash is in the log (the driver logs commands at debug)"


# --- tokens out of URLs ------------------------------------------------------------------------------

async def test_a_socket_authenticates_with_its_first_frame_and_subscribes(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    async with served(api.app) as address:
        socket = await Watcher.open(f"ws://{address}/ws")
        assert await socket.ask({"type": "auth", "token": customer.access_token}) == {"type": "authenticated",
                                                                                      "id": "q1"}
        snapshot = await socket.subscribe(orderIds=[order["id"]])
        assert snapshot["type"] == "snapshot" and snapshot["orders"][0]["id"] == order["id"]
        again = await socket.ask({"type": "auth", "token": customer.access_token})
        assert (again["type"], again["code"]) == ("error", "bad_request")
        await socket.close()


async def test_a_socket_whose_first_frame_is_not_a_valid_auth_closes_4401(api_factory):
    api = await api_factory(ws_auth_timeout_seconds=0.5)
    customer = await api.customer()
    async with served(api.app) as address:
        silent = await Watcher.open(f"ws://{address}/ws")
        subscribe_first = await Watcher.open(f"ws://{address}/ws")
        await subscribe_first.send({"type": "subscribe", "orderIds": ["65f7a8b9c1234567890abcde"]})
        bad_token = await Watcher.open(f"ws://{address}/ws")
        await bad_token.send({"type": "auth", "token": customer.access_token + "x"})
        not_json = await Watcher.open(f"ws://{address}/ws")
        await not_json.send("hello")
        for watcher in (silent, subscribe_first, bad_token, not_json):
            assert await watcher.wait_closed() == 4401
            assert watcher.frames == []


async def test_an_event_stream_ticket_works_once_for_its_own_user(api):
    store = await api.store()
    alice, bob = await api.customer("Alice Iyer"), await api.customer("Bob Das")
    order = await api.place_order(alice, store)
    issued = await api.post("/api/auth/stream-ticket", alice)
    assert issued.status_code == 201 and issued.json()["data"]["expiresInSeconds"] == 30
    ticket = issued.json()["data"]["ticket"]
    assert alice.access_token not in ticket
    async with served(api.app) as address, httpx.AsyncClient(base_url=f"http://{address}", timeout=10) as client:
        events = f"/api/orders/{order['id']}/events"
        assert await _sse_first_frame(client, f"{events}?ticket={ticket}") == 200
        again = await client.get(f"{events}?ticket={ticket}")
        assert (again.status_code, again.json()["message"]) == (401, "Invalid or expired stream ticket.")
        bobs = (await api.post("/api/auth/stream-ticket", bob)).json()["data"]["ticket"]
        assert (await client.get(f"{events}?ticket={bobs}")).status_code == 403
        staff_ticket = (await api.post("/api/auth/stream-ticket", store.staff)).json()["data"]["ticket"]
        assert await _sse_first_frame(client, f"/api/stores/{store.id}/events?ticket={staff_ticket}") == 200
    assert (await api.post("/api/auth/stream-ticket")).status_code == 401


async def test_the_bundled_pages_put_no_token_in_a_url():
    from tests.harness import REPO

    for script in (REPO / "static" / "js").glob("*.js"):
        text = script.read_text()
        assert "token=" not in text and "?token" not in text, script.name
    live = (REPO / "static" / "js" / "live.js").read_text()
    assert '{ type: "auth", token }' in live
