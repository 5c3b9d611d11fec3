"""CampusBite's own clients on OrderPulse (issue 14): each call of its web app and mobile app,
answered in the shape that client reads (written from its source; its code is not fetched here),
the staff journey in its order, its notification stream, and the guards around both.

One real server process for the module (its stream and its log are real); the commitment test,
which needs a watch-tier customer, runs in-process on a clock it moves.
"""

from __future__ import annotations

import asyncio
import email
import json
import re
import uuid
from datetime import datetime

import httpx
import pytest_asyncio

from server.logging_filter import redact

from tests.deadline_helpers import make_watch_tier
from tests.realtime.conftest import Deployment, SseWatcher, deployment_env, metrics_of
from tests.support import PASSWORD, Actor, Api, StoreSetup, metric_value, until


class Campus:
    def __init__(self, deployment: Deployment, api: Api, store: StoreSetup, other: StoreSetup,
                 alice: Actor, bob: Actor) -> None:
        self.deployment, self.api, self.store, self.other, self.alice, self.bob = (
            deployment, api, store, other, alice, bob)

    @property
    def server(self):
        return self.deployment.servers[0]


@pytest_asyncio.fixture(scope="module")
async def campus(mongo, tmp_path_factory) -> Campus:
    # `info` so that uvicorn's own request lines are written, to show the stream's token is not.
    env = deployment_env(mongo, None, SSE_HEARTBEAT_SECONDS="0.5", LOG_LEVEL="info")
    deployment = Deployment(tmp_path_factory.mktemp("campusbite"), env)
    server = deployment.server()
    await deployment.start(server)
    try:
        admin = await deployment.create_admin(server)
        api = deployment.api(server)
        store, other = await api.store(admin), await api.store(admin)
        alice, bob = await api.customer("Alice Iyer"), await api.customer("Bob Das")
        yield Campus(deployment, api, store, other, alice, bob)
    finally:
        await deployment.close()


def parses_as_a_date(value: str) -> bool:
    """What `new Date(value)` needs to not be an "Invalid time value"."""
    return isinstance(value, str) and datetime.fromisoformat(value.replace("Z", "+00:00")) is not None


# --- one test per call of the table ------------------------------------------------------

async def test_users_profile_is_the_profile_so_a_reload_keeps_the_login(campus: Campus):
    api, alice = campus.api, campus.alice
    profile = await api.get("/api/users/profile", alice)
    assert profile.status_code == 200
    data = profile.json()["data"]
    assert data == (await api.get("/api/users/me", alice)).json()["data"]
    assert (data["id"], data["role"], data["trustTier"], data["noShowCount"], data["orderingRestrictedUntil"]) == (
        alice.id, "student", "good", 0, None)
    assert (await api.get("/api/users/profile")).status_code == 401


async def test_refresh_token_rotates_the_session_instead_of_sending_the_user_to_login(campus: Campus):
    api = campus.api
    bob = await api.login(campus.bob.user["email"])
    response = await api.post("/api/auth/refresh-token", json={"refreshToken": bob.refresh_token})
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["accessToken"] and data["refreshToken"] != bob.refresh_token
    assert data["user"]["trustTier"] == "good"
    fresh = Actor(data["user"], data["accessToken"], data["refreshToken"])
    assert (await api.get("/api/users/profile", fresh)).status_code == 200
    # Presented again a moment later (a second tab), the old one answers the same new pair.
    again = await api.post("/api/auth/refresh-token", json={"refreshToken": bob.refresh_token})
    assert again.status_code == 200
    assert (again.json()["data"]["accessToken"], again.json()["data"]["refreshToken"]) == (
        data["accessToken"], data["refreshToken"])


async def test_signing_in_carries_the_trust_standing_the_banners_read(campus: Campus):
    api = campus.api
    customer = await api.login(campus.alice.user["email"])
    assert {k: customer.user[k] for k in ("trustTier", "noShowCount", "orderingRestrictedUntil")} == {
        "trustTier": "good", "noShowCount": 0, "orderingRestrictedUntil": None}
    staff = await api.login(campus.store.staff.user["email"])
    assert staff.user["trustTier"] is None and staff.user["storeId"] == campus.store.id
    # The mobile app finds the staff member's store by `owner_id === user._id`.
    assert customer.user["_id"] == customer.user["id"] and staff.user["_id"] == staff.id
    stores = (await api.get("/api/stores", staff)).json()["data"]["stores"]
    assert [s["id"] for s in stores if s.get("owner_id") == staff.user["_id"]] == [campus.store.id]


async def test_staff_order_list_and_detail_carry_the_snake_case_fields_its_pages_read(campus: Campus):
    api, store = campus.api, campus.store
    order = await api.place_order(campus.alice, store)
    listing = (await api.get("/api/orders", store.staff)).json()["data"]
    detail = (await api.get(f"/api/orders/{order['id']}", store.staff)).json()["data"]
    listed = next(o for o in listing if o["id"] == order["id"])
    for shown in (listed, detail):
        assert parses_as_a_date(shown["created_at"]) and parses_as_a_date(shown["updated_at"])
        assert (shown["_id"], shown["status"], shown["order_status"], shown["payment_status"]) == (
            order["id"], "placed", "placed", "pending")
        assert shown["total_amount"] == order["totalAmount"] and shown["order_number"] == order["orderNumber"]
        assert shown["customer_name"] == "Alice"
        assert shown["payment_reference"] == order["paymentReference"]
        assert shown["is_commitment_confirmed"] is False and shown["special_instructions"] is None
        assert "pickup_otp" not in shown  # staff never get the code
        # OrderPulse's own names are all still there.
        assert shown["orderStatus"] == "placed" and shown["createdAt"] == shown["created_at"]


async def test_order_history_is_an_array_with_pagination_beside_it(campus: Campus):
    api = campus.api
    customer = await api.customer("Chitra Nair")
    orders = [await api.place_order(customer, campus.store) for _ in range(3)]
    body = (await api.get("/api/orders?page=1&limit=2", customer)).json()
    assert isinstance(body["data"], list) and [o["id"] for o in body["data"]] == [orders[2]["id"], orders[1]["id"]]
    assert body["pagination"] == {"total": 3, "page": 1, "limit": 2, "totalPages": 2}
    active = (await api.get("/api/orders?status=placed,accepted,processing,ready", customer)).json()
    assert len(active["data"]) == 3 and active["pagination"]["total"] == 3


async def test_staff_find_their_store_by_owner_id_and_its_menu_as_menu_items(campus: Campus):
    api, store = campus.api, campus.store
    staff_view = (await api.get("/api/stores", store.staff)).json()["data"]
    mine = [s for s in staff_view["stores"] if s.get("owner_id") == store.staff.id]
    assert [s["id"] for s in mine] == [store.id] and mine[0]["owner_name"] == "Kavya Staff"
    assert all(s["owner_id"] is None for s in staff_view["stores"] if s["id"] != store.id)
    menu = (await api.get(f"/api/stores/{store.id}/menu", store.staff)).json()["data"]
    assert {item["id"] for item in menu["menuItems"]} == {item["id"] for item in store.menu}
    # Its dashboard counts `is_available` items and shows `is_active`; its settings read `upi_id`.
    assert all(item["is_available"] is True and item["store_id"] == store.id for item in menu["menuItems"])
    assert (mine[0]["is_active"], mine[0]["upi_id"], mine[0]["_id"]) == (True, mine[0]["upiId"], store.id)
    # Everyone else (and OrderPulse's pages) still get the bare list of stores, with no owner named.
    for caller in (None, campus.alice):
        stores = (await api.get("/api/stores", caller)).json()["data"]
        assert isinstance(stores, list) and all(s["owner_id"] is None for s in stores)
    # The contract's bare menu to anonymous callers; CampusBite's clients always send their token.
    assert isinstance((await api.get(f"/api/stores/{store.id}/menu")).json()["data"], list)
    assert isinstance((await api.get(f"/api/stores/{store.id}/menu", campus.alice)).json()["data"]["menuItems"], list)
    # A public route never treats a bad token as none: the client must learn to refresh.
    refused = await api.get("/api/stores", headers={"Authorization": "Bearer nope"})
    assert (refused.status_code, refused.json()) == (401, {"success": False, "message": "Invalid token."})


async def test_accepting_before_payment_is_the_counter_flow(campus: Campus):
    api, store = campus.api, campus.store
    order = await api.place_order(campus.alice, store)
    response = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": "accepted"})
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["status"], data["payment_status"]) == ("accepted", "pending")


async def test_manual_pickup_hands_over_without_the_code_and_is_recorded(campus: Campus):
    api, store = campus.api, campus.store
    order = await api.place_order(campus.alice, store, transaction_id="UPIMANUAL01")
    await api.advance(store, order["id"], "paid", "processing", "ready")
    before = metric_value(await metrics_of(campus.server), "orderpulse_pickups_total", method="manual")
    response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"manualConfirm": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Pickup confirmed by staff without the code. Order picked up."
    data = body["data"]
    assert (data["status"], data["pickupMethod"], data["isOtpVerified"]) == ("picked_up", "manual", False)
    assert data["pickedUpBy"] == {"id": store.staff.id, "name": "Kavya Staff"} and parses_as_a_date(data["pickedUpAt"])
    shown = (await api.get(f"/api/orders/{order['id']}", campus.alice)).json()["data"]
    assert (shown["pickupMethod"], shown["pickedUpBy"]["id"]) == ("manual", store.staff.id)
    after = metric_value(await metrics_of(campus.server), "orderpulse_pickups_total", method="manual")
    assert after == before + 1


async def test_confirm_commitment_also_answers_data_order_beside_seed_003s_body(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    store = await api.store()
    customer = await api.customer()
    await make_watch_tier(api, store, customer, clock)
    order = await api.place_order(customer, store)
    body = (await api.post(f"/api/orders/{order['id']}/confirm-commitment", customer)).json()
    assert list(body) == ["success", "message", "order", "data"]
    assert body["message"] == "Commitment confirmed. Your order will be processed."
    assert list(body["order"]) == ["id", "orderNumber", "status", "requiresCommitment", "commitmentConfirmedAt",
                                   "commitmentDeadline", "totalAmount", "paymentStatus"]
    shown = body["data"]["order"]
    assert (shown["id"], shown["status"], shown["isCommitmentConfirmed"], shown["requires_commitment"]) == (
        order["id"], "placed", True, True)
    detail = (await api.get(f"/api/orders/{order['id']}", customer)).json()["data"]
    assert {key: detail[key] for key in shown} == shown  # the full order (GET adds its estimate)
    profile = (await api.login(customer.user["email"])).user
    assert (profile["trustTier"], profile["noShowCount"]) == ("watch", 2)


async def test_checkout_and_the_full_order_carry_what_its_tracking_page_reads(campus: Campus):
    api, store = campus.api, campus.store
    session = (await api.checkout(campus.bob, store)).json()["data"]
    assert session["noShowPolicy"]["requiresCommitmentBeforePrep"] is False
    order = await api.place_order(campus.bob, store)
    await api.advance(store, order["id"], "paid", "processing", "ready")
    shown = (await api.get(f"/api/orders/{order['id']}", campus.bob)).json()["data"]
    assert shown["storeName"] == shown["store_name"] == shown["store"]["name"]
    assert shown["otpExpiresAt"] == shown["readyExpiresAt"] and parses_as_a_date(shown["otpExpiresAt"])
    assert shown["otp"] == shown["pickup_otp"] == shown["pickupOtp"]
    # The mobile app's tracking screen reads the same order in snake_case.
    assert (shown["order_status"], shown["order_number"]) == ("ready", order["orderNumber"])
    # poll-status is seed 000's 13 fields, exactly, whatever the full order adds.
    poll = (await api.get(f"/api/orders/{order['id']}/poll-status", campus.bob)).json()["data"]
    assert list(poll) == ["id", "orderNumber", "orderStatus", "paymentStatus", "totalAmount", "isCommitmentConfirmed",
                          "commitmentDeadlineAt", "readyAt", "readyExpiresAt", "isOtpVerified", "cancelledAt",
                          "cancellationReason", "updatedAt"]


# --- the staff journey in CampusBite's order, and its guards ---------------------------------------

async def test_staff_journey_accept_prepare_ready_confirm_payment_then_pickup(campus: Campus):
    api, store = campus.api, campus.store
    by_hand = await api.place_order(campus.alice, store)
    by_code = await api.place_order(campus.alice, store)
    for order in (by_hand, by_code):
        for status in ("accepted", "processing", "ready"):
            response = await api.patch(f"/api/orders/{order['id']}/status", store.staff, json={"status": status})
            assert response.status_code == 200, response.text
            assert response.json()["data"]["payment_status"] == "pending"
        # The console shows "Confirm Payment" for a ready, unpaid order.
        response = await api.patch(f"/api/orders/{order['id']}/payment-status", store.staff,
                                   json={"paymentStatus": "success"})
        assert response.status_code == 200 and response.json()["message"] == "Payment status updated."
        assert (response.json()["data"]["status"], response.json()["data"]["payment_status"]) == ("ready", "success")
    response = await api.post(f"/api/orders/{by_hand['id']}/verify-otp", store.staff, json={"manualConfirm": True})
    assert response.status_code == 200 and response.json()["data"]["pickupMethod"] == "manual"
    otp = await api.otp_of(campus.alice, by_code["id"])
    response = await api.post(f"/api/orders/{by_code['id']}/verify-otp", store.staff, json={"otp": otp})
    assert response.status_code == 200
    assert (response.json()["data"]["pickupMethod"], response.json()["data"]["isOtpVerified"]) == ("code", True)


async def test_an_unpaid_order_is_not_handed_over_by_hand_or_by_code(campus: Campus):
    api, store = campus.api, campus.store
    order = await api.place_order(campus.alice, store)
    await api.advance(store, order["id"], "accepted", "processing", "ready")
    otp = await api.otp_of(campus.alice, order["id"])
    for body in ({"manualConfirm": True}, {"otp": otp}):
        response = await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json=body)
        assert response.status_code == 400
        assert response.json() == {"success": False,
                                   "message": "Payment must be confirmed before the order is picked up."}
    shown = (await api.get(f"/api/orders/{order['id']}", store.staff)).json()["data"]
    assert (shown["status"], shown["pickupMethod"], shown["version"]) == ("ready", None, 4)


async def test_manual_pickup_is_refused_to_customers_other_stores_and_orders_not_ready(campus: Campus):
    api, store = campus.api, campus.store
    order = await api.place_order(campus.alice, store)
    await api.advance(store, order["id"], "paid")
    path = f"/api/orders/{order['id']}/verify-otp"
    assert (await api.post(path, campus.alice, json={"manualConfirm": True})).status_code == 403
    assert (await api.post(path, campus.other.staff, json={"manualConfirm": True})).status_code == 403
    response = await api.post(path, store.staff, json={"manualConfirm": True})
    assert response.status_code == 400 and response.json()["message"] == "Only a ready order can be picked up."
    response = await api.post(path, store.staff, json={"manualConfirm": "yes"})
    assert response.status_code == 400 and response.json()["message"] == "manualConfirm must be true or false."
    response = await api.post(path, store.staff, json={})
    assert response.status_code == 400 and response.json()["message"] == "otp is required."
    assert (await api.get(f"/api/orders/{order['id']}", store.staff)).json()["data"]["version"] == 2


# --- the notification stream ------------------------------------------------------------------------

def notifications_of(stream: SseWatcher) -> list[dict]:
    return [json.loads(data) for _, _, data in stream.messages]


def updates_of(stream: SseWatcher, order_id: str) -> list[str]:
    return [n["data"]["status"] for n in notifications_of(stream)
            if n["type"] == "order_update" and n["data"]["orderId"] == order_id]


async def test_the_notification_stream_delivers_every_change_of_the_customers_orders(campus: Campus):
    api, store, server = campus.api, campus.store, campus.server
    customer = await api.customer("Devi Menon")
    url = f"{server.url}/api/notifications/subscribe?token="
    mine = SseWatcher().start(url + customer.access_token, "")
    staff = SseWatcher().start(url + store.staff.access_token, "")
    other = SseWatcher().start(url + campus.bob.access_token, "")
    try:
        for stream in (mine, staff, other):
            await until(lambda s=stream: s.messages, message="the connected event")
            assert stream.http_status == 200 and stream.headers["content-type"].startswith("text/event-stream")
            first = notifications_of(stream)[0]
            assert (first["type"], first["message"]) == ("connected", "Notification stream connected.")
            assert stream.messages[0][1] == "message"  # unnamed, so EventSource.onmessage gets it
        # An order placed after the stream opened, then each step of the counter flow.
        order = await api.place_order(customer, store)
        steps = ["placed", "accepted", "processing", "ready", "ready", "picked_up"]
        await api.advance(store, order["id"], "accepted", "processing", "ready", "paid")
        await api.post(f"/api/orders/{order['id']}/verify-otp", store.staff, json={"manualConfirm": True})
        await until(lambda: updates_of(mine, order["id"]) == steps, message="every change on the customer's stream")
        await until(lambda: updates_of(staff, order["id"]) == steps, message="every change on the store's stream")
        update = [n for n in notifications_of(mine) if n["type"] == "order_update"][-1]
        assert (update["title"], update["data"]["orderNumber"], update["data"]["paymentStatus"]) == (
            "Order Collected", order["orderNumber"], "success")
        store_update = [n for n in notifications_of(staff) if n["type"] == "order_update"][-1]
        assert store_update["message"] == f"Order {order['orderNumber']}: Order Collected."
        versions = [n["data"]["version"] for n in notifications_of(mine) if n["type"] == "order_update"]
        assert versions == [1, 2, 3, 4, 5, 6]
        assert all("otp" not in n.get("data", {}) for n in notifications_of(mine))  # the code is never pushed
        assert updates_of(other, order["id"]) == []  # nobody else's orders
    finally:
        for stream in (mine, staff, other):
            await stream.stop()
    log = server.log_path.read_text()
    assert customer.access_token not in log and store.staff.access_token not in log
    # Access lines are off; were a proxy's or uvicorn's line for this URL logged, the filter redacts it.
    line = redact(f'127.0.0.1:5000 - "GET /api/notifications/subscribe?token={customer.access_token} HTTP/1.1" 200')
    assert customer.access_token not in line and "token=[redacted]" in line


async def test_the_notification_stream_refuses_a_missing_or_bad_token(campus: Campus):
    async with httpx.AsyncClient(base_url=campus.server.url) as client:
        missing = await client.get("/api/notifications/subscribe")
        bad = await client.get("/api/notifications/subscribe?token=not-a-token")
    assert (missing.status_code, bad.status_code) == (401, 401)
    assert missing.json()["success"] is False and bad.json()["success"] is False


async def test_disabling_the_account_ends_its_notification_stream(campus: Campus):
    api, admin = campus.api, campus.deployment.admin
    customer = await api.customer("Esha Pillai")
    stream = SseWatcher().start(f"{campus.server.url}/api/notifications/subscribe?token={customer.access_token}", "")
    try:
        await until(lambda: stream.messages, message="the connected event")
        response = await api.patch(f"/api/admin/users/{customer.id}", admin, json={"isActive": False})
        assert response.status_code == 200, response.text
        await until(lambda: stream._task.done(), message="the stream to end")
        again = SseWatcher().start(f"{campus.server.url}/api/notifications/subscribe?token={customer.access_token}", "")
        await until(lambda: again.http_status is not None, message="the refused reconnect")
        assert again.http_status == 401
        await again.stop()
    finally:
        await stream.stop()


# --- its staff console's menu and store settings (FormData, as its pages send them) -----------

async def test_menu_management_adds_edits_toggles_and_deletes_with_formdata(campus: Campus):
    api, store = campus.api, campus.store
    photo = {"image": ("samosa.jpg", b"\xff\xd8\xff" + b"0" * 2048, "image/jpeg")}  # dropped, never stored
    added = await api.post("/api/menu", store.staff, data={
        "name": "Samosa", "description": "Two pieces", "price": "25", "category": "Snacks",
        "is_available": "false"}, files=photo)
    assert added.status_code == 201, added.text
    item = added.json()["data"]["menuItem"]
    assert (item["name"], item["price"], item["category"], item["is_available"], item["store_id"]) == (
        "Samosa", 25, "Snacks", False, store.id)
    listed = (await api.get(f"/api/stores/{store.id}/menu?all=true", store.staff)).json()["data"]["menuItems"]
    assert any(entry["_id"] == item["id"] for entry in listed)

    edited = await api.request("PUT", f"/api/menu/{item['id']}", store.staff, data={
        "name": "Samosa (2 pcs)", "description": "", "price": "30.5", "category": "Snacks", "is_available": "true"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["data"]["menuItem"]["price"], edited.json()["data"]["menuItem"]["isAvailable"]) == (30.5, True)

    toggled = await api.patch(f"/api/menu/{item['id']}/availability", store.staff)
    assert toggled.json()["data"]["menuItem"]["is_available"] is False
    # Its console lists the menu without ?all=true: the store's own staff still see the sold-out item,
    # to switch it back; its student menu shows it with an "Unavailable" badge; the contract's
    # anonymous menu (OrderPulse's pages) leaves it out.
    console = (await api.get(f"/api/stores/{store.id}/menu", store.staff)).json()["data"]["menuItems"]
    assert any(entry["_id"] == item["id"] and entry["is_available"] is False for entry in console)
    student = (await api.get(f"/api/stores/{store.id}/menu", campus.alice)).json()["data"]["menuItems"]
    assert any(entry["_id"] == item["id"] and entry["is_available"] is False for entry in student)
    public = (await api.get(f"/api/stores/{store.id}/menu")).json()["data"]
    assert all(entry["id"] != item["id"] for entry in public)
    again = await api.patch(f"/api/menu/{item['id']}/availability", store.staff)
    assert again.json()["data"]["menuItem"]["is_available"] is True

    bad = await api.post("/api/menu", store.staff, data={"name": "Tea", "price": "free"})
    assert (bad.status_code, bad.json()["message"]) == (400, "price must be a number.")
    for actor in (campus.other.staff, campus.alice):
        for method, path in (("PUT", f"/api/menu/{item['id']}"), ("DELETE", f"/api/menu/{item['id']}"),
                             ("PATCH", f"/api/menu/{item['id']}/availability")):
            refused = await api.request(method, path, actor, data={"name": "Mine now"})
            assert refused.status_code == 403, (method, path, refused.text)

    deleted = await api.request("DELETE", f"/api/menu/{item['id']}", store.staff)
    assert deleted.status_code == 200, deleted.text
    assert (await api.request("DELETE", f"/api/menu/{item['id']}", store.staff)).status_code == 404
    listed = (await api.get(f"/api/stores/{store.id}/menu?all=true", store.staff)).json()["data"]["menuItems"]
    assert all(entry["_id"] != item["id"] for entry in listed)


async def test_store_settings_save_from_json_and_from_formdata(campus: Campus):
    api, store = campus.api, campus.store
    saved = await api.request("PUT", f"/api/stores/{store.id}", store.staff, json={
        "name": "Campus Cafe North", "description": "By the library", "upi_id": "northcafe@upi",
        "operating_hours": {"open": "08:00", "close": "20:00"}})
    assert saved.status_code == 200, saved.text
    shown = saved.json()["data"]["store"]
    assert (shown["name"], shown["upi_id"], shown["description"], shown["owner_id"]) == (
        "Campus Cafe North", "northcafe@upi", "By the library", store.staff.id)
    with_photo = await api.request("PUT", f"/api/stores/{store.id}", store.staff, data={
        "name": "Campus Cafe", "description": "", "upi_id": "cafe@upi", "operating_hours": '{"open":"08:00"}'},
        files={"image": ("front.png", b"\x89PNG" + b"0" * 512, "image/png")})
    assert with_photo.status_code == 200, with_photo.text
    assert with_photo.json()["data"]["store"]["upi_id"] == "cafe@upi"
    assert (await api.request("PUT", f"/api/stores/{store.id}", campus.other.staff,
                              json={"name": "Taken"})).status_code == 403
    empty = await api.request("PUT", f"/api/stores/{store.id}", store.staff, json={"operating_hours": {}})
    assert (empty.status_code, empty.json()["message"]) == (400, "name is required.")  # settings are replaced whole
    public = (await api.get(f"/api/stores/{store.id}")).json()["data"]
    assert public["name"] == "Campus Cafe" and public["upiId"] == "cafe@upi"


# --- issue 24: the mobile app and every remaining journey, one test per row ---------------------------
# Each request is what CampusBite's client sends (the file and line named), its answer what it reads.

SEED_001_ORDER_KEYS = ["id", "orderNumber", "paymentReference", "totalAmount", "paymentStatus", "orderStatus",
                       "paymentMethod", "transactionId", "items", "specialInstructions", "isCommitmentConfirmed",
                       "commitmentDeadlineAt", "store", "createdAt", "updatedAt"]


async def test_row_1_a_student_opens_a_store_in_the_mobile_app(campus: Campus):
    api, store, alice = campus.api, campus.store, campus.alice
    # HomeScreen.tsx: `storesApi.list()`, keyed and navigated by `_id`; StoreCard.tsx shows `is_active`.
    listed = (await api.get("/api/stores", alice)).json()["data"]
    shown = next(s for s in listed if s["_id"] == store.id)
    assert (shown["is_active"], shown["upi_id"], shown["owner_id"]) == (True, shown["upiId"], None)
    faculty = await api.customer("Prof Rao", role="faculty")
    assert next(s for s in (await api.get("/api/stores", faculty)).json()["data"] if s["_id"] == store.id) == shown
    # StoreMenuScreen.tsx: `storesApi.get(_id)` and `storesApi.menu(_id)`; MenuItemCard.tsx reads `is_available`.
    opened = await api.get(f"/api/stores/{shown['_id']}", alice)
    assert opened.status_code == 200 and opened.json()["data"]["is_active"] is True
    menu = (await api.get(f"/api/stores/{shown['_id']}/menu", alice)).json()["data"]["menuItems"]
    first = next(item for item in menu if item["_id"] == store.menu[0]["id"])
    assert (first["is_available"], first["store_id"], first["price"]) == (True, store.id, store.menu[0]["price"])
    # The cart line it builds (`menuItemId: item._id`) checks out.
    session = await api.post("/api/orders/checkout-session", alice,
                             json={"storeId": shown["_id"], "items": [{"menuItemId": first["_id"], "quantity": 1}]})
    assert session.status_code == 200, session.text


async def test_row_2_a_dead_token_is_the_same_401_on_every_route_the_public_ones_too(api_factory, clock):
    api = await api_factory(clock=clock)
    admin = await api.admin()
    store = await api.store(admin)
    customer = await api.customer()
    order = await api.place_order(customer, store)
    # poll-status is answered below the middleware for a caller it already knows: known here first.
    poll = f"/api/orders/{order['id']}/poll-status"
    assert (await api.get(poll, store.staff)).status_code == 200
    routes = ["/api/stores", f"/api/stores/{store.id}", f"/api/stores/{store.id}/menu", "/api/users/profile",
              "/api/orders", "/api/push/public-key", f"/api/stores/{store.id}/menu/events",
              "/api/payments/upi-qr?link=upi://pay?pa=cafe@upi", poll]

    async def answers(authorization: str) -> set[tuple[int, str]]:
        return {(r.status_code, r.text) for r in [await api.get(path, headers={"Authorization": authorization})
                                                  for path in routes]}

    for malformed in ("Bearer", "Basic c3RhZmY6cGFzcw==", "Bearer not-a-jwt"):
        assert await answers(malformed) == {(401, '{"success":false,"message":"Invalid token."}')}
    # StoreDashboardPage.jsx after 15 idle minutes: its token has expired.
    clock.advance(15 * 60 + 1)
    assert await answers(store.staff.headers["Authorization"]) == {
        (401, '{"success":false,"message":"Token expired."}')}
    # Its interceptor refreshes on that 401 (`/auth/refresh-token`) and asks again: its store is back.
    refreshed = await api.post("/api/auth/refresh-token", json={"refreshToken": store.staff.refresh_token},
                               headers=store.staff.headers)  # axios still attaches the dead token
    assert refreshed.status_code == 200, refreshed.text
    again = await api.get("/api/stores", headers={"Authorization": f"Bearer {refreshed.json()['data']['accessToken']}"})
    assert [s["_id"] for s in again.json()["data"]["stores"] if s["owner_id"] == store.staff.id] == [store.id]
    # Signing in again is never blocked by a stale header either.
    login = await api.post("/api/auth/login", json={"email": customer.user["email"], "password": PASSWORD},
                           headers=customer.headers)
    assert login.status_code == 200
    # A disabled account's token (revoked) is refused alike, here and on every route.
    fresh = Actor(login.json()["data"]["user"], login.json()["data"]["accessToken"], "")
    admin = await api.login(admin.user["email"])
    assert (await api.patch(f"/api/admin/users/{customer.id}", admin, json={"isActive": False})).status_code == 200
    assert await answers(fresh.headers["Authorization"]) == {
        (401, '{"success":false,"message":"Invalid token. User not found."}')}
    # Without any token the public routes stay public.
    assert (await api.get("/api/stores")).status_code == 200


async def test_row_3_store_employee_sign_up_waits_for_an_admin_to_assign_a_store(campus: Campus):
    api, admin = campus.api, campus.deployment.admin
    # RegisterPage.jsx / RegisterScreen.tsx, role "Store Employee".
    email = f"ravi-{uuid.uuid4().hex[:6]}@campus.test"
    response = await api.post("/api/auth/register", json={
        "name": "Ravi Kumar", "email": email, "password": "Password1", "confirmPassword": "Password1",
        "role": "store_employee", "employeeId": "EMP042", "phoneNumber": "9876543210",
        "storeName": "North Canteen", "storeUpiId": "north@upi"})
    assert response.status_code == 201, response.text
    assert response.json()["message"] == (
        "Your store employee account is created. An admin must assign you to your store before you can run it; "
        "until then you can sign in but not act for any store.")
    data = response.json()["data"]
    ravi = Actor(data["user"], data["accessToken"], data["refreshToken"])
    assert (ravi.user["role"], ravi.user["storeId"], ravi.user["awaitingStore"]) == ("store_employee", None, True)
    # It acts for no store: no store is "mine", no order is shown, nothing of a store's may change.
    stores = (await api.get("/api/stores", ravi)).json()["data"]["stores"]
    assert all(s["owner_id"] is None for s in stores)
    assert (await api.get("/api/orders", ravi)).json()["data"] == []
    assert (await api.post("/api/menu", ravi, json={"name": "Tea", "price": 10})).status_code == 403
    assert (await api.request("PUT", f"/api/stores/{campus.other.id}", ravi, json={"name": "Mine"})).status_code == 403
    # The admin finds the sign-up and assigns the store; the same session then runs it.
    pending = (await api.get("/api/admin/users?awaitingStore=true", admin)).json()["data"]["users"]
    entry = next(u for u in pending if u["id"] == ravi.id)
    assert (entry["requestedStore"], entry["awaitingStore"], entry["phoneNumber"]) == ("North Canteen", True, "9876543210")
    assigned = await api.request("PUT", f"/api/admin/users/{ravi.id}/role", admin,
                                 json={"role": "store_employee", "storeId": campus.other.id})
    assert assigned.status_code == 200, assigned.text
    mine = [s["_id"] for s in (await api.get("/api/stores", ravi)).json()["data"]["stores"] if s["owner_id"] == ravi.id]
    assert mine == [campus.other.id]
    assert (await api.get("/api/users/profile", ravi)).json()["data"]["awaitingStore"] is False
    assert ravi.id not in [u["id"] for u in
                           (await api.get("/api/admin/users?awaitingStore=true", admin)).json()["data"]["users"]]


async def test_row_4_profile_save_changes_name_phone_and_register_number_not_email_or_role(campus: Campus):
    api = campus.api
    customer = await api.customer("Farah Khan")
    # ProfilePage.jsx (AuthContext.jsx:70): `{name, phoneNumber}`.
    saved = await api.request("PUT", "/api/users/profile", customer, json={"name": "Farah K", "phoneNumber": "9876543210"})
    assert saved.status_code == 200, saved.text
    assert saved.json()["message"] == "Profile updated successfully."
    data = saved.json()["data"]
    assert (data["name"], data["phoneNumber"], data["phone_number"], data["_id"]) == (
        "Farah K", "9876543210", "9876543210", customer.id)
    assert (await api.get("/api/users/profile", customer)).json()["data"]["phoneNumber"] == "9876543210"
    # app/src/api/users.ts: `{name, phone_number}`; a student's register number too.
    saved = await api.request("PUT", "/api/users/profile", customer,
                              json={"phone_number": "+91 98765 43210", "registerNumber": "21CS1001"})
    assert (saved.json()["data"]["phoneNumber"], saved.json()["data"]["register_number"]) == ("+91 98765 43210", "21CS1001")
    # An emptied phone field is sent as null: removed.
    cleared = await api.request("PUT", "/api/users/profile", customer, json={"name": "Farah K", "phoneNumber": None})
    assert "phoneNumber" not in cleared.json()["data"]
    # Refused with a clear 400, and nothing changes.
    for body, message in (({"email": "someone@else.test"}, "Your email cannot be changed here: it is where your "
                                                           "password reset links go."),
                          ({"role": "admin"}, "Your role cannot be changed here: an admin changes roles."),
                          ({"phoneNumber": "call me"}, "phoneNumber must be a phone number of 7 to 15 digits."),
                          ({"name": ""}, "name is required."),
                          ({}, "Send at least one of: name, phoneNumber, registerNumber.")):
        refused = await api.request("PUT", "/api/users/profile", customer, json={**body})
        assert (refused.status_code, refused.json()["message"]) == (400, message)
    shown = (await api.get("/api/users/profile", customer)).json()["data"]
    assert (shown["name"], shown["email"], shown["role"]) == ("Farah K", customer.user["email"], "student")
    staff = campus.store.staff
    refused = await api.request("PUT", "/api/users/profile", staff, json={"registerNumber": "X1"})
    assert (refused.status_code, refused.json()["message"]) == (400, "registerNumber is only for students.")
    assert (await api.request("PUT", "/api/users/profile", json={"name": "Nobody"})).status_code == 401


def mailed_link(campus: Campus, address: str, subject: str, path: str) -> str | None:
    """The token of the `path` link in the mail of `subject` to `address` in the server's outbox, once written."""
    for written in (campus.server.data_dir / "outbox").glob("*.eml"):
        mail = email.message_from_bytes(written.read_bytes())
        if (mail["To"], mail["Subject"]) == (address, subject):
            text = mail.get_payload(decode=True).decode()
            found = re.search(rf"{re.escape(campus.server.url)}/{path}/([A-Za-z0-9_-]+)", text)
            return found.group(1) if found else None
    return None


async def test_row_5_forgot_password_mails_a_link_that_resets_it_and_signs_out(campus: Campus):
    api = campus.api
    customer = await api.customer("Hema Pillai")
    address = customer.user["email"]
    # VerifyEmailPage.jsx:72 posts the sign-up mail's token with no body and shows `message`.
    verify = await until(lambda: mailed_link(campus, address, "Confirm your email for OrderPulse", "verify-email"),
                         10, message="the verification mail")
    verified = await api.post(f"/api/auth/verify-email/{verify}")
    assert (verified.status_code, verified.json()["message"]) == (200, "Your email is verified.")
    # ForgotPasswordPage.jsx:41 and ForgotPasswordScreen.tsx send `{email}`; an unknown one gets the same answer.
    answer = await api.post("/api/auth/forgot-password", json={"email": address})
    assert answer.status_code == 200 and answer.json()["success"] is True
    unknown = await api.post("/api/auth/forgot-password", json={"email": "no-one-row5@campus.test"})
    assert (unknown.status_code, unknown.json()) == (200, answer.json())
    token = await until(lambda: mailed_link(campus, address, "Reset your OrderPulse password", "reset-password"),
                        10, message="the reset mail")
    # ResetPasswordPage.jsx:64 posts `{password}` to the link's token and shows `message` when refused.
    reset = await api.post(f"/api/auth/reset-password/{token}", json={"password": "NewPassword1"})
    assert reset.status_code == 200, reset.text
    again = await api.post(f"/api/auth/reset-password/{token}", json={"password": "OtherPassword2"})
    assert (again.status_code, again.json()["message"]) == (
        400, "This password reset link is invalid, used or expired. Ask for a new one.")
    # The interceptors' refresh (`/auth/refresh-token`) no longer works for the session from before.
    assert (await api.post("/api/auth/refresh-token", json={"refreshToken": customer.refresh_token})).status_code == 401
    assert (await api.login(address, "NewPassword1")).user["is_email_verified"] is True


async def test_row_6_staff_get_the_code_to_compare_but_only_a_code_sent_is_a_code_pickup(campus: Campus):
    api, store = campus.api, campus.store
    by_eye, by_code = await api.place_order(campus.alice, store), await api.place_order(campus.alice, store)
    for order in (by_eye, by_code):
        await api.advance(store, order["id"], "paid", "processing", "ready")
    # StoreOrdersPage.jsx:596-603 and its pickup dialog read `pickup_otp` from the store's order list
    # (`GET /orders`), OrderDetailPage.jsx:376-383 from the order (`GET /orders/{id}`).
    listing = (await api.get("/api/orders", store.staff)).json()["data"]
    listed = {o["_id"]: o for o in listing}
    for order in (by_eye, by_code):
        detail = (await api.get(f"/api/orders/{order['id']}", store.staff)).json()["data"]
        for shown in (listed[order["id"]], detail):
            assert shown["pickup_otp"] == await api.otp_of(campus.alice, order["id"])
            assert "pickupOtp" not in shown and "otp" not in shown
    # Another store's staff never see it (nor the order).
    assert (await api.get(f"/api/orders/{by_eye['id']}", campus.other.staff)).status_code == 403
    # "Confirm OTP Checked & Complete" sends `{manualConfirm: true}`: the server compared nothing.
    response = await api.post(f"/api/orders/{by_eye['id']}/verify-otp", store.staff, json={"manualConfirm": True})
    assert (response.json()["data"]["pickupMethod"], response.json()["data"]["isOtpVerified"]) == ("manual", False)
    # The mobile app's OrderDetailScreen.tsx sends the typed code: compared by the server.
    code = listed[by_code["id"]]["pickup_otp"]
    wrong = await api.post(f"/api/orders/{by_code['id']}/verify-otp", store.staff,
                           json={"otp": "000000" if code != "000000" else "111111"})
    assert wrong.status_code == 400
    response = await api.post(f"/api/orders/{by_code['id']}/verify-otp", store.staff, json={"otp": code})
    assert (response.json()["data"]["pickupMethod"], response.json()["data"]["isOtpVerified"]) == ("code", True)
    assert "pickup_otp" not in response.json()["data"]  # picked up: no code any more


async def test_row_7_unavailable_items_are_listed_with_their_flag_where_campusbite_lists_them(campus: Campus):
    api, store = campus.api, campus.store
    added = await api.post(f"/api/stores/{store.id}/menu", store.staff,
                           json={"name": "Masala Dosa", "price": 60, "isAvailable": False})
    item = added.json()["data"]
    try:
        # StoreMenuPage.jsx:297-306 shows the "Unavailable" badge from `isAvailable`; the app reads `is_available`.
        # Students and faculty alike; staff in test_staff_find_their_store_by_owner_id_and_its_menu_as_menu_items.
        for caller in (campus.alice, await api.customer("Meera Iyer", role="faculty")):
            listed = (await api.get(f"/api/stores/{store.id}/menu", caller)).json()["data"]["menuItems"]
            shown = next(entry for entry in listed if entry["_id"] == item["id"])
            assert (shown["isAvailable"], shown["is_available"]) == (False, False)
        # The contract's menu (anonymous, OrderPulse's pages) lists only what can be ordered, unless ?all=true.
        assert item["id"] not in [entry["id"] for entry in (await api.get(f"/api/stores/{store.id}/menu")).json()["data"]]
        assert item["id"] in [entry["id"] for entry in
                              (await api.get(f"/api/stores/{store.id}/menu?all=true")).json()["data"]]
        # And ordering it is still refused.
        session = await api.post("/api/orders/checkout-session", campus.alice,
                                 json={"storeId": store.id, "items": [{"menuItemId": item["id"], "quantity": 1}]})
        assert (session.status_code, session.json()["message"]) == (400, "Masala Dosa is currently unavailable.")
    finally:
        await api.request("DELETE", f"/api/menu/{item['id']}", store.staff)


async def test_row_8_the_user_carries_what_the_profile_screen_reads(api_factory, tmp_path):
    api = await api_factory(smtp_url=None)
    customer = await api.customer("Gita Rao")
    # ProfileScreen.tsx:74,125,153-156 reads these from the signed-in user.
    for user in (customer.user, (await api.get("/api/users/profile", customer)).json()["data"]):
        assert (user["trust_tier"], user["no_show_count"], user["is_email_verified"], user["_id"]) == (
            "good", 0, False, customer.id)
        assert user["register_number"] == user["registerNumber"] and user["register_number"]
    await api.runtime.mailer.drain(10)
    mail = email.message_from_bytes(next((tmp_path / "outbox").glob("*.eml")).read_bytes())
    token = re.search(r"/verify-email/([A-Za-z0-9_-]+)", mail.get_payload(decode=True).decode()).group(1)
    assert (await api.post(f"/api/auth/verify-email/{token}")).status_code == 200
    signed_in = await api.login(customer.user["email"])
    assert (signed_in.user["is_email_verified"], signed_in.user["isEmailVerified"]) == (True, True)
    staff = (await api.store()).staff
    assert (staff.user["trust_tier"], staff.user["no_show_count"]) == (None, 0)


async def test_row_9_the_created_order_has_its_id_where_the_app_reads_it_and_transaction_id_is_kept(campus: Campus):
    api, store = campus.api, campus.store
    session = (await api.checkout(campus.bob, store)).json()["data"]
    # CheckoutScreen.tsx:90-96 sends `transaction_id` and navigates with `data.data._id`.
    response = await api.post("/api/orders", campus.bob, json={"checkoutToken": session["checkoutToken"],
                                                               "transaction_id": "upi24row9tx"})
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    assert list(data) == [*SEED_001_ORDER_KEYS, "_id"]  # seed 001's keys in their order, then `_id`
    assert (data["_id"], data["transactionId"]) == (data["id"], "UPI24ROW9TX")
    again = await api.post("/api/orders", campus.bob, json={"checkoutToken": session["checkoutToken"],
                                                            "transaction_id": "upi24row9tx"})
    assert (again.status_code, again.json()["data"]["_id"]) == (200, data["id"])
    tracked = (await api.get(f"/api/orders/{data['_id']}", campus.bob)).json()["data"]
    assert tracked["transaction_id"] == "UPI24ROW9TX"
    # Sent under both names, the camelCase one is read.
    session = (await api.checkout(campus.bob, store)).json()["data"]
    both = await api.post("/api/orders", campus.bob, json={"checkoutToken": session["checkoutToken"],
                                                           "transactionId": "upi24camel", "transaction_id": "upi24snake"})
    assert (both.status_code, both.json()["data"]["transactionId"]) == (201, "UPI24CAMEL")
    # OrdersScreen.tsx's `ordersApi.confirmPayment(id, transactionId)` sends it as `transaction_id` too.
    unpaid = await api.place_order(campus.bob, store)
    confirmed = await api.patch(f"/api/orders/{unpaid['id']}/payment-status", store.staff,
                                json={"paymentStatus": "success", "transaction_id": "upi24counter"})
    assert (confirmed.status_code, confirmed.json()["data"]["transactionId"]) == (200, "UPI24COUNTER")


async def test_row_10_two_refreshes_a_moment_apart_keep_the_user_signed_in(campus: Campus):
    api = campus.api
    signed_in = await api.login(campus.bob.user["email"])
    body = {"refreshToken": signed_in.refresh_token}
    # Two tabs (or React StrictMode's double effect) refresh with the same token at once.
    first, second = await asyncio.gather(api.post("/api/auth/refresh-token", json=body),
                                         api.post("/api/auth/refresh-token", json=body))
    assert (first.status_code, second.status_code) == (200, 200)
    pair = (first.json()["data"]["accessToken"], first.json()["data"]["refreshToken"])
    assert (second.json()["data"]["accessToken"], second.json()["data"]["refreshToken"]) == pair
    fresh = Actor(first.json()["data"]["user"], *pair)
    assert (await api.get("/api/users/profile", fresh)).status_code == 200
    assert (await api.post("/api/auth/refresh-token", json={"refreshToken": pair[1]})).status_code == 200
