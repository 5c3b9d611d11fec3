"""Input hygiene: numbers are ASCII, prices are JSON numbers in range, text carries no control or
bidirectional characters, bad resumes leave nothing attached, 405s name every method, weak
validators match, and a client that hangs up mid-body is not a server error."""

from __future__ import annotations

import socket
import uuid

import httpx
from jsonschema import Draft202012Validator

from server.domain.clock import utcnow
from server.http.openapi import openapi_document
from server.models import ClientApp, MenuItem, Order, Store, User
from tests.harness import ServerProcess, drop_database
from tests.support import metric_value, until_sync

UNSAFE = "must not contain control or bidirectional formatting characters."
# NUL, escape, DEL, a C1 control, right-to-left override, isolate, mark, line separator.
UNSAFE_SAMPLES = ["Tea\x00", "Te\x1ba", "Tea\x7f", "Tea\x85x", "Tea \u202eaeT", "a\u2066b\u2069", "a\u200fb",
                  "a\u2028b", "two\nlines", "\tTea", "Tea\n"]


async def test_unicode_digits_are_not_numbers(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    cases = [
        ("/api/orders?page=%C2%B2", "page must be a whole number from 1 to 10000."),
        ("/api/orders?limit=%C2%B3", "limit must be a whole number from 1 to 100."),
        ("/api/orders?page=%D9%A1", "page must be a whole number from 1 to 10000."),  # Arabic-Indic one
        ("/api/orders?limit=%EF%BC%95", "limit must be a whole number from 1 to 100."),  # fullwidth five
        (f"/api/orders/{order['id']}/poll-status?wait=%C2%B2", "wait must be a whole number from 1 to 30."),
        (f"/api/orders?page={'9' * 5000}", "page must be a whole number from 1 to 10000."),  # past int()'s limit
    ]
    for path, message in cases:
        response = await api.get(path, customer)
        assert response.status_code == 400, path
        assert response.json() == {"success": False, "message": message}, path
    client_id = f"opc_test_{uuid.uuid4().hex}"
    await ClientApp(client_id=client_id, name="Wallet", created_at=utcnow()).insert()
    response = await api.get(f"/v1/order/{order['id']}?wait=%C2%B9", customer, headers={"X-Client-ID": client_id})
    assert response.status_code == 400
    assert response.json() == {"error": "wait must be a whole number from 1 to 30"}
    # A declared length in superscript digits is no number: the body is read and judged as sent.
    response = await api.post("/api/auth/login", content=b"{}",
                              headers={"Content-Type": "application/json", "Content-Length": "\u00b2".encode("latin-1")})
    assert response.status_code == 400 and response.json()["message"] == "email is required."


async def test_a_bad_last_event_id_is_400_and_leaves_no_subscriber(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    hub, broker = api.runtime.hub, api.runtime.broker
    order_path, store_path = f"/api/orders/{order['id']}/events", f"/api/stores/{store.id}/events"
    answers = []
    for _ in range(25):
        for path, actor, extra in ((order_path, customer, {"headers": {"Last-Event-ID": "\u00b2".encode("latin-1")}}),
                                   (order_path + "?lastEventId=%C2%B2", customer, {}),
                                   (store_path + "?lastEventId=%C2%B3", store.staff, {})):
            answers.append(await api.get(path, actor, **extra))
    assert hub.subscribers == set()
    assert not hub._order_watchers.get(order["id"]) and not hub._store_watchers.get(store.id)
    assert f"order:{order['id']}" not in broker._listeners and f"store:{store.id}" not in broker._listeners
    # Ids this server never sends are refused too, rather than silently restarting the stream.
    answers += [await api.get(order_path, customer, headers={"Last-Event-ID": "abc"}),
                await api.get(store_path, store.staff, headers={"Last-Event-ID": "-1"})]
    for response in answers:
        assert response.status_code == 400, response.request.url
        assert response.json() == {"success": False, "message": "Last-Event-ID must be a whole number."}


async def _menu_items() -> list[dict]:
    return [item.model_dump() for item in await MenuItem.find({}).to_list()]


async def test_prices_must_be_json_numbers_in_range(api):
    store = await api.store()
    item_path = f"/api/menu/{store.menu[0]['id']}"
    before = await _menu_items()
    cases = [
        ({"price": 1e26}, "price must be at most 100000."),
        ({"price": 1e300}, "price must be at most 100000."),
        ({"price": 100000.01}, "price must be at most 100000."),
        ({"price": "1e300"}, "price must be a number."),
        ({"price": "12.5"}, "price must be a number."),
        ({"price": True}, "price must be a number."),
        ({"price": [12]}, "price must be a number."),
        ({"price": 0}, "price must be greater than 0."),
        ({"price": -0.5}, "price must be greater than 0."),
        ({"price": 10.555}, "price must have at most 2 decimals."),
    ]
    for body, message in cases:
        for method, path in (("POST", f"/api/stores/{store.id}/menu"), ("PATCH", item_path)):
            response = await api.request(method, path, store.staff, json={"name": "Tea", **body})
            assert response.status_code == 400, (method, body)
            assert response.json() == {"success": False, "message": message}, (method, body)
    response = await api.patch(item_path, store.staff, json={"price": None})
    assert response.status_code == 400 and response.json()["message"] == "price must be a number."
    assert await _menu_items() == before
    response = await api.patch(item_path, store.staff, json={"price": 100000})
    assert response.status_code == 200 and response.json()["data"]["price"] == 100000


async def _stored() -> dict[str, int]:
    return {"users": await User.count(), "stores": await Store.count(), "items": await MenuItem.count(),
            "orders": await Order.count()}


async def test_text_fields_refuse_control_and_bidirectional_characters(api):
    admin = await api.admin()
    store = await api.store(admin)
    customer = await api.customer()
    store_body = {"name": "Cafe", "location": "Block A", "upiId": "cafe@upi"}
    register = {"name": "Mira", "email": "mira@campus.edu", "password": "long-enough-1", "role": "student",
                "registerNumber": "R1"}
    targets = [
        ("POST", "/api/stores", admin, store_body, ("name", "location", "upiId")),
        ("POST", f"/api/stores/{store.id}/menu", store.staff, {"name": "Tea", "price": 10}, ("name", "category")),
        ("PATCH", f"/api/menu/{store.menu[0]['id']}", store.staff, {}, ("name", "category")),
        ("POST", "/api/auth/register", None, register, ("name", "email", "registerNumber")),
        ("POST", "/api/admin/users", admin, {**register, "role": "admin"}, ("name", "email")),
    ]
    before = await _stored()
    menu_before = await _menu_items()
    for method, path, actor, body, names in targets:
        for name in names:
            for sample in UNSAFE_SAMPLES:
                response = await api.request(method, path, actor, json={**body, name: sample})
                assert response.status_code == 400, (path, name, sample)
                assert response.json()["message"] in (f"{name} {UNSAFE}", f"{name} must be a valid email address."), \
                    (path, name, sample, response.json())
    checkout = {"storeId": store.id, "items": [{"menuItemId": store.menu[0]["id"], "quantity": 1}]}
    for sample in ("less ice\x00", "less ice \u202e", "tab\there", "less\u2028ice"):
        response = await api.post("/api/orders/checkout-session", customer,
                                  json={**checkout, "specialInstructions": sample})
        assert response.status_code == 400, sample
        assert response.json()["message"] == f"specialInstructions {UNSAFE}"
    assert await _stored() == before
    assert await _menu_items() == menu_before
    # Instructions to a kitchen may span lines; a Windows line end is kept as a plain newline.
    response = await api.post("/api/orders/checkout-session", customer,
                              json={**checkout, "specialInstructions": "less ice\r\nno sugar"})
    assert response.status_code == 200 and response.json()["data"]["specialInstructions"] == "less ice\nno sugar"
    # Letters of any script, and the joiners emoji need, are text.
    response = await api.post(f"/api/stores/{store.id}/menu", store.staff,
                              json={"name": "मसाला चाय 👩‍🍳", "price": 20, "category": "पेय"})
    assert response.status_code == 201 and response.json()["data"]["name"] == "मसाला चाय 👩‍🍳"


async def test_passwords_need_a_visible_character_and_emails_are_validated(api):
    def body(**changes):
        return {"name": "Mira", "email": f"mira{uuid.uuid4().hex[:8]}@campus.edu", "password": "long-enough-1",
                "role": "student", "registerNumber": "R1", **changes}

    before = await _stored()
    for password, message in (("        ", "password must contain a character other than spaces."),
                              ("\t\t\t\t\t\t\t\t", "password must contain a character other than spaces."),
                              ("long-enough\x00", f"password {UNSAFE}"),
                              ("short", "password must be 8 to 200 characters.")):
        response = await api.post("/api/auth/register", json=body(password=password))
        assert response.status_code == 400 and response.json()["message"] == message, password
    for email in ("a..b@campus.edu", "asha@campus..edu", "asha@-campus.edu", "asha@camp_us.edu", "asha@campus",
                  "asha@@campus.edu", "asha rao@campus.edu", "asha@localhost"):
        response = await api.post("/api/auth/register", json=body(email=email))
        assert response.status_code == 400, email
        assert response.json()["message"] == "email must be a valid email address.", email
    assert await _stored() == before
    # Normalised: the domain's case does not make a second account.
    response = await api.post("/api/auth/register", json=body(email="Mira.Rao@Campus.EDU", password="  spaced  "))
    assert response.status_code == 201 and response.json()["data"]["user"]["email"] == "mira.rao@campus.edu"
    response = await api.post("/api/auth/register", json=body(email="mira.rao@campus.edu"))
    assert response.status_code == 409


async def test_a_wrong_method_lists_every_method_of_the_path(api):
    store = await api.store()
    for method, path, allowed in (("OPTIONS", "/api/orders", "GET, HEAD, POST"),
                                  ("DELETE", "/api/orders", "GET, HEAD, POST"),
                                  ("PUT", "/api/stores", "GET, HEAD, POST"),
                                  ("DELETE", f"/api/stores/{store.id}/menu", "GET, HEAD, POST"),
                                  ("POST", f"/api/menu/{store.menu[0]['id']}", "DELETE, PATCH, PUT")):
        response = await api.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.headers["allow"] == allowed, (method, path)
        assert response.json() == {"success": False, "message": "Method not allowed."}
    response = await api.request("DELETE", "/v1/order/65f7a8b9c1234567890abcde")
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    assert set(response.json()) == {"error"}
    response = await api.request("GET", "/v1/order")
    assert response.status_code == 405 and response.headers["allow"] == "POST"


async def test_a_weak_validator_matches_the_current_etag(api):
    store = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    path = f"/api/orders/{order['id']}/poll-status"
    first = await api.get(path, customer)
    etag = first.headers["etag"]
    # The known caller's repeat poll is answered by the fast path; `?via=route` makes the route answer.
    for url in (path, path + "?via=route"):
        for header in (f"W/{etag}", f'"other", W/{etag}', f' "a,b" ,{etag} ', "*"):
            response = await api.get(url, customer, headers={"If-None-Match": header})
            assert response.status_code == 304, (url, header)
            assert response.headers["etag"] == etag
        for header in ('"other"', f"W/{etag[:-2]}\"", etag[1:-1]):
            response = await api.get(url, customer, headers={"If-None-Match": header})
            assert response.status_code == 200, (url, header)


def test_a_client_that_hangs_up_mid_body_is_a_499_not_an_error(tmp_path, mongo):
    database = f"t_{uuid.uuid4().hex[:12]}"
    server = ServerProcess({"MONGODB_URL": mongo.url, "MONGODB_DATABASE": database, "LOG_LEVEL": "info"},
                           tmp_path).start()
    try:
        labels = {"method": "POST", "route": "/api/auth/login", "status": "499"}
        for _ in range(3):
            with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
                raw.sendall(b"POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"email\": \"a")
        # The server learns of each hang-up on its own schedule: wait for the count.
        until_sync(lambda: metric_value(httpx.get(f"{server.url}/metrics", timeout=5).text,
                                        "orderpulse_http_requests_total", **labels) == 3, 10, message="three 499s")
        text = httpx.get(f"{server.url}/metrics", timeout=5).text
        assert metric_value(text, "orderpulse_http_requests_total", method="POST", route="/api/auth/login",
                            status="500") == 0
        response = httpx.post(f"{server.url}/api/auth/login", json={"email": "nobody@campus.edu", "password": "x" * 8})
        assert response.status_code == 401  # and the server still answers
    finally:
        server.stop()
        drop_database(mongo.url, database)
    log = server.log_path.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log[-2000:]


# --- one number rule for JSON and FormData (issue 25, finding 10) ------------------------------

async def test_formdata_prices_follow_the_json_number_rule(api):
    store = await api.store()
    item_path = f"/api/menu/{store.menu[0]['id']}"
    before = await _menu_items()
    # Other scripts' digits, underscores, spaces, signs and words that `float()` reads, none a JSON number.
    for text in ("\u0661\u0662", "\uff11\uff12", " 1_000 ", "1_000", " 12", "12 ", "+12", "012", "12.", ".5",
                 "0x10", "inf", "Infinity", "nan", "1e3.5", "\u00b2", "9" * 5000):
        for method, path in (("POST", "/api/menu"), ("PUT", item_path)):
            for form in ({"data": {"name": "Tea", "price": text}},  # urlencoded
                         {"data": {"name": "Tea", "price": text}, "files": {"image": ("t.png", b"\x89PNG", "image/png")}}):
                response = await api.request(method, path, store.staff, **form)
                assert response.status_code == 400, (method, text, response.text)
                assert response.json() == {"success": False, "message": "price must be a number."}, (method, text)
        # The console's JSON may carry the price as text too: the same rule.
        response = await api.post("/api/menu", store.staff, json={"name": "Tea", "price": text})
        assert response.status_code == 400 and response.json()["message"] == "price must be a number.", text
    assert await _menu_items() == before
    # What JSON writes as a number is a price from a form too, and then meets the price rules.
    for text, rupees in (("12", 12), ("12.5", 12.5), ("0.5", 0.5), ("1e3", 1000), ("1.20", 1.2)):
        response = await api.post("/api/menu", store.staff, data={"name": f"Tea {text}", "price": text})
        assert response.status_code == 201, (text, response.text)
        assert response.json()["data"]["menuItem"]["price"] == rupees
    for text, message in (("-5", "price must be greater than 0."), ("10.555", "price must have at most 2 decimals."),
                          ("1e26", "price must be at most 100000.")):
        response = await api.post("/api/menu", store.staff, data={"name": "Tea", "price": text})
        assert (response.status_code, response.json()["message"]) == (400, message), text


# --- the schema's mismatches (issue 25, finding 13) ---------------------------------------------

def _body_schema(document: dict, path: str, method: str) -> Draft202012Validator:
    reference = document["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    return Draft202012Validator({**reference, "components": document["components"]})


async def test_an_empty_page_limit_or_wait_is_a_400_as_the_document_types_them(api):
    store = await api.store()
    customer, admin = await api.customer(), await api.admin()
    order = await api.place_order(customer, store)
    document = openapi_document()
    cases = [
        ("/api/orders?page=", customer, "page must be a whole number from 1 to 10000."),
        ("/api/orders?limit=", customer, "limit must be a whole number from 1 to 100."),
        ("/api/orders?page", customer, "page must be a whole number from 1 to 10000."),
        ("/api/admin/users?page=", admin, "page must be a whole number from 1 to 10000."),
        ("/api/admin/customers?limit=", admin, "limit must be a whole number from 1 to 100."),
        (f"/api/orders/{order['id']}/poll-status?wait=", customer, "wait must be a whole number from 1 to 30."),
    ]
    for path, actor, message in cases:
        response = await api.get(path, actor)
        assert (response.status_code, response.json()) == (400, {"success": False, "message": message}), path
        name = message.split()[0]
        template = path.split("?")[0].replace(order["id"], "{order_id}")
        parameter = next(p for p in document["paths"][template]["get"]["parameters"] if p["name"] == name)
        assert not Draft202012Validator(parameter["schema"]).is_valid(""), path  # the document agrees
    client_id = f"opc_test_{uuid.uuid4().hex}"
    await ClientApp(client_id=client_id, name="Wallet", created_at=utcnow()).insert()
    response = await api.get(f"/v1/order/{order['id']}?wait=", customer, headers={"X-Client-ID": client_id})
    assert (response.status_code, response.json()) == (400, {"error": "wait must be a whole number from 1 to 30"})
    # Absent is still the default.
    response = await api.get("/api/orders", customer)
    assert response.status_code == 200 and response.json()["pagination"]["page"] == 1


async def test_a_menu_item_patch_that_changes_nothing_is_a_400(api):
    store = await api.store()
    item_path = f"/api/menu/{store.menu[0]['id']}"
    before = await _menu_items()
    schema = _body_schema(openapi_document(), "/api/menu/{item_id}", "patch")
    empty = "Send at least one of: name, price, category, isAvailable."
    for body in ({}, {"name": None}, {"category": None, "isAvailable": None}, {"description": "ignored"}):
        for method in ("PATCH", "PUT"):
            response = await api.request(method, item_path, store.staff, json=body)
            assert (response.status_code, response.json()) == (400, {"success": False, "message": empty}), (method, body)
        assert not schema.is_valid(body), body  # the document refuses it too
    for method in ("PATCH", "PUT"):
        response = await api.request(method, item_path, store.staff)
        assert (response.status_code, response.json()["message"]) == (400, empty), method
    # CampusBite's console, with a form of only what OrderPulse drops.
    response = await api.request("PUT", item_path, store.staff, data={"description": "Hot"})
    assert (response.status_code, response.json()["message"]) == (400, empty)
    assert await _menu_items() == before
    for body in ({"isAvailable": False}, {"name": "Chai", "category": None}, {"price": 15}):
        assert schema.is_valid(body), body
        response = await api.patch(item_path, store.staff, json=body)
        assert response.status_code == 200, (body, response.text)


async def test_a_store_patch_refuses_null_for_what_a_store_always_has(api):
    admin = await api.admin()
    store = await api.store(admin)
    path = f"/api/stores/{store.id}"
    saved = await api.patch(path, admin, json={"description": "By the gate"})
    assert saved.status_code == 200
    before = await _stored_stores()
    schema = _body_schema(openapi_document(), "/api/stores/{store_id}", "patch")
    for body, message in (({"name": None}, "name is required."), ({"location": None}, "location is required."),
                          ({"upiId": None}, "upiId is required."), ({"isActive": None}, "isActive must be true or false."),
                          ({"name": None, "isActive": True}, "name is required."),
                          ({}, "Send at least one of: name, location, description, upiId, isActive.")):
        response = await api.patch(path, store.staff, json=body)
        assert (response.status_code, response.json()) == (400, {"success": False, "message": message}), body
        assert not schema.is_valid(body), body  # the document refuses it too
    assert await _stored_stores() == before
    # Absent fields are left as they are; a null description removes it, as the document allows.
    for body in ({"isActive": False}, {"name": "Cafe North"}, {"description": None}):
        assert schema.is_valid(body), body
        response = await api.patch(path, store.staff, json=body)
        assert response.status_code == 200, (body, response.text)
    shown = response.json()["data"]
    assert (shown["name"], shown["isActive"], shown["description"]) == ("Cafe North", False, None)


async def _stored_stores() -> list[dict]:
    return [store.model_dump() for store in await Store.find({}).to_list()]
