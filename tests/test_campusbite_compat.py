"""CampusBite's own clients on OrderPulse (issue 14): each call of its web app and mobile app,
answered in the shape that client reads (written from its source; its code is not fetched here),
the staff journey in its order, its notification stream, and the guards around both.

One real server process for the module (its stream and its log are real); the commitment test,
which needs a watch-tier customer, runs in-process on a clock it moves.
"""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest_asyncio

from server.logging_filter import redact

from tests.deadline_helpers import make_watch_tier
from tests.realtime.conftest import Deployment, SseWatcher, deployment_env, metrics_of
from tests.support import Actor, Api, StoreSetup, metric_value, until


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
