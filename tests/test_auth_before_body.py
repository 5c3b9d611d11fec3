"""Authorisation before parsing (issue 25, finding 4): a caller a route refuses is refused before
a byte of the body is read, with the contract's status and message, and a flood of such bodies
does not grow the server.

The route walk drives the real app in-process with an ASGI `receive` that records any call, so
"not read" is observed directly, with no timing; the memory test sends real multipart forms of a
few megabytes to a real server process and compares its RSS before and after, as a ratio.
"""

from __future__ import annotations

import asyncio
import re
import socket
import uuid

import httpx
from starlette.routing import Route

from server.domain import messages
from server.http.openapi import openapi_document
from tests.harness import ServerProcess, create_admin, drop_database
from tests.support import PASSWORD, Api

SOME_ID = "65f7a8b9c1234567890abcde"
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# The routes with a body (in the document) that a customer may use; every other one refuses them by role.
CUSTOMER_ROUTES = {("POST", "/api/orders/checkout-session"), ("POST", "/api/orders"),
                   ("POST", "/api/push/subscriptions"), ("DELETE", "/api/push/subscriptions"), ("POST", "/v1/order"),
                   ("PUT", "/api/users/profile")}


class BodyRead(Exception):
    """Raised by the test's `receive`: the app asked for the body."""


async def _call(app, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes, bool]:
    """One request straight into the app whose body never arrives; (status, body, whether it was read)."""
    read = False
    sent: list[dict] = []

    async def receive():
        nonlocal read
        read = True
        raise BodyRead

    async def send(message):
        sent.append(message)

    raw_headers = [(name.lower().encode(), value.encode()) for name, value in {
        "host": "testserver", "content-type": "multipart/form-data; boundary=x" if path == "/api/menu"
        else "application/json", "content-length": str(4 * 1024 * 1024), **headers}.items()]
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": raw_headers,
             "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}
    try:
        await app(scope, receive, send)
    except BodyRead:
        pass
    start = next((m for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start["status"] if start else 0), body, read


def _body_routes(app) -> list[tuple[str, str]]:
    routes = [(method, route.path) for route in app.routes if isinstance(route, Route) and route.methods
              for method in sorted(route.methods & BODY_METHODS) if route.path.startswith(("/api/", "/v1/"))]
    return sorted(routes)


async def test_every_body_taking_route_refuses_before_reading_the_body(api):
    app = api.app
    document = openapi_document()
    routes = _body_routes(app)
    # Every route the document gives a body is walked (and the walk is not empty by accident).
    with_body = {(method.upper(), path) for path, item in document["paths"].items()
                 for method, operation in item.items() if "requestBody" in operation}
    assert with_body <= set(routes), with_body - set(routes)
    customer = await api.customer()
    checked = []
    for method, template in routes:
        operation = document["paths"][template][method.lower()]
        if "security" not in operation:
            continue  # sign-in and registration: the body is the credential
        path = re.sub(r"\{[a-z_]+\}", SOME_ID, template)
        partner = template.startswith("/v1/")
        # Anonymous: 401 (a partner route first wants its client id: 499), body unread.
        status, body, read = await _call(app, method, path, {})
        assert not read, (method, template, "anonymous")
        if partner:
            assert (status, body) == (499, b'{"error":"' + messages.PARTNER_CLIENT_MISSING.encode() + b'"}'), template
        else:
            assert status == 401, (method, template, status, body)
            assert body == b'{"success":false,"message":"' + messages.NO_TOKEN.encode() + b'"}', (template, body)
        # A customer on a route of staff or admins that takes a body: 403, body unread, before any
        # lookup of the ids (a new route a customer may use belongs in CUSTOMER_ROUTES).
        if (method, template) in with_body and (method, template) not in CUSTOMER_ROUTES:
            status, body, read = await _call(app, method, path, customer.headers)
            assert not read, (method, template, "customer")
            assert status == 403, (method, template, status, body)
            assert body == b'{"success":false,"message":"' + messages.FORBIDDEN_ROLE.encode() + b'"}', (template, body)
        checked.append((method, template))
    assert ("POST", "/api/menu") in checked and len(checked) >= 20, checked


async def test_store_staff_without_a_store_are_refused_the_console_before_its_body(api):
    admin = await api.admin()
    store = await api.store(admin)
    other = await api.store(admin)
    # A staff member naming another store in the form reads the form first and is then refused.
    response = await api.post("/api/menu", store.staff, data={"name": "Tea", "price": "10", "store_id": other.id})
    assert (response.status_code, response.json()["message"]) == (403, messages.FORBIDDEN_ROLE)
    response = await api.post("/api/menu", admin, data={"name": "Tea", "price": "10", "store_id": other.id})
    assert response.status_code == 201 and response.json()["data"]["menuItem"]["store_id"] == other.id


def _answer_without_body(port: int, token: str) -> bytes:
    """The answer's head to a 5 MB multipart POST /api/menu whose body never comes (the socket's
    timeout only keeps a broken server from hanging the test)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        raw.sendall(f"POST /api/menu HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\n"
                    f"Content-Type: multipart/form-data; boundary=x\r\nContent-Length: {5 * 1024 * 1024}\r\n\r\n"
                    .encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = raw.recv(65536)
            if not chunk:
                break
            received += chunk
    return received


def _rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


async def test_a_flood_of_customer_forms_is_refused_unread_and_does_not_grow_the_server(mongo, tmp_path):
    database = f"t_{uuid.uuid4().hex[:12]}"
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database}
    server = ServerProcess(env, tmp_path).start()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)
    try:
        create_admin(env, email="flood-admin@campus.test", password=PASSWORD, name="Flood Admin")
        async with httpx.AsyncClient(base_url=server.url, timeout=60, limits=limits) as client:
            api = Api(client)
            customer = await api.customer()
            store = await api.store(await api.login("flood-admin@campus.test"))
            photo = b"\xff\xd8\xff" + bytes(3 * 1024 * 1024)  # a phone photo's size, 3 MiB

            async def form(actor, name: str) -> httpx.Response:
                return await api.post("/api/menu", actor, data={"name": name, "price": "10"},
                                      files={"image": ("dish.jpg", photo, "image/jpeg")})

            await form(customer, "Mine")  # the route's own first-use allocations are not what is measured
            before = _rss_bytes(server.process.pid)
            for _ in range(3):
                answers = await asyncio.gather(*(form(customer, "Mine") for _ in range(100)))
                for response in answers:
                    assert response.status_code == 403, response.text
                    assert response.json() == {"success": False, "message": messages.FORBIDDEN_ROLE}
            after = _rss_bytes(server.process.pid)
            # Through the real server: a form announced and never sent is answered all the same.
            head = await asyncio.to_thread(_answer_without_body, server.port, customer.access_token)
            assert head.startswith(b"HTTP/1.1 403 "), head
            # The server still serves its own staff's form, photo and all.
            added = await form(store.staff, "Samosa")
            assert added.status_code == 201, added.text
    finally:
        server.stop()
        drop_database(mongo.url, database)
    # 300 forms of 3 MiB, parsed, grew it several times over; refused unread, it stays where it was.
    assert after / before < 1.15, f"server RSS went from {before / 2**20:.0f} MiB to {after / 2**20:.0f} MiB"
    log = server.log_path.read_text()
    assert "Traceback" not in log, log[-3000:]
