"""The admin console and the kitchen's store controls in Chromium, against one real server for the
module: an admin builds a store and its staff, the staff run its kitchen, the admin disables them.
Plus the 404 page, the favicon, axe-core and screenshots of these pages at both sizes."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import PHONE, WALL, screenshot
from tests.browser.shop import Account, Shop
from tests.harness import ServerProcess, create_admin, drop_database

ADMIN = Account("console-admin@campus.test", "admin-pass-1", "Console Admin", "admin")


@pytest.fixture(scope="module")
def server(mongo, tmp_path_factory):
    """One server and database for the module's tests, with an admin as the command line makes one."""
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"t_{uuid.uuid4().hex[:12]}"}
    create_admin(env, email=ADMIN.email, password=ADMIN.password, name=ADMIN.name)
    # Ready orders time out after 1.2 s, so a no-show for the console to clear is quick to make.
    process = ServerProcess({**env, "READY_NO_SHOW_TIMEOUT_MINUTES": "0.02"}, tmp_path_factory.mktemp("console")).start()
    yield process
    process.kill()
    drop_database(mongo.url, env["MONGODB_DATABASE"])


def sign_in(page, base_url: str, account: Account) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_label("Password").press("Enter")


def api(base_url: str, account: Account, method: str, path: str, **kwargs):
    with httpx.Client(base_url=base_url, timeout=15) as client:
        token = client.post("/api/auth/login", json={"email": account.email, "password": account.password})
        headers = {"Authorization": f"Bearer {token.json()['data']['accessToken']}"}
        return client.request(method, path, headers=headers, **kwargs).json()["data"]


def test_an_admin_builds_a_store_its_staff_run_the_kitchen_and_disabling_signs_them_out(server, open_page):
    admin = open_page(WALL)
    sign_in(admin, server.url, ADMIN)
    expect(admin).to_have_url(f"{server.url}/admin")  # an admin lands on the console, not the kitchen
    expect(admin.locator("body")).to_have_attribute("data-ready", "true")

    stores = admin.locator("#store-form")
    stores.get_by_label("Name").fill("Night Canteen")
    stores.get_by_label("Location").fill("Hostel Block C")
    stores.get_by_label("UPI id").fill("nightcanteen@upi")
    stores.get_by_role("button", name="Create store").press("Enter")  # keyboard only, here and below
    row = admin.locator("#store-table tr", has_text="Night Canteen")
    expect(row).to_contain_text("Open")

    menu = admin.locator("#menu")
    menu.get_by_label("Store").select_option(label="Night Canteen")
    items = admin.locator("#item-form")
    items.get_by_label("Name").fill("Maggi")
    items.get_by_label("Category").fill("Snacks")
    items.get_by_label("Price (₹)").fill("0")
    items.get_by_label("Price (₹)").press("Enter")
    expect(items.get_by_role("alert")).to_have_text("price must be greater than 0.")
    items.get_by_label("Price (₹)").fill("40")
    items.get_by_role("button", name="Add item").press("Enter")
    # The admin corrects the name and the price in the row, and saves with Enter.
    row_name = admin.get_by_role("textbox", name="Name of Maggi")
    expect(row_name).to_have_value("Maggi")
    row_name.fill("Maggi Noodles")
    admin.get_by_role("textbox", name="Price of Maggi in rupees").fill("45")
    admin.get_by_role("button", name="Save Maggi").press("Enter")
    expect(admin.get_by_role("textbox", name="Name of Maggi Noodles")).to_have_value("Maggi Noodles")
    expect(admin.get_by_role("textbox", name="Price of Maggi Noodles in rupees")).to_have_value("45")

    staff = Account(f"night-{uuid.uuid4().hex[:6]}@campus.test", "night-pass-1", "Nisha Night", "store_employee")
    form = admin.locator("#staff-form")
    form.get_by_label("Name").fill(staff.name)
    form.get_by_label("Email").fill(staff.email)
    form.get_by_label("Password (at least 8 characters)").fill(staff.password)
    form.get_by_label("Store").select_option(label="Night Canteen")
    form.get_by_role("button", name="Create staff account").press("Enter")
    expect(admin.locator("#staff-table tr", has_text=staff.email)).to_contain_text("Night Canteen")

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, staff)
    expect(kitchen).to_have_url(f"{server.url}/kitchen")
    expect(kitchen.locator("#store-name")).to_contain_text("Night Canteen")
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")
    # Keyboard only: the controls open, act and close with Enter and Escape.
    opener = kitchen.get_by_role("button", name="Store & menu")
    opener.press("Enter")
    dialog = kitchen.get_by_role("dialog", name="Store & menu")
    sold_out = dialog.get_by_role("checkbox", name="Sold out: Maggi Noodles")
    sold_out.press("Space")
    expect(dialog.locator("tr", has_text="Maggi Noodles")).to_have_attribute("data-sold-out", "true")
    expect(sold_out).to_be_checked()
    expect(sold_out).to_be_focused()
    dialog.get_by_role("button", name="Close the store").press("Enter")
    expect(kitchen.locator("#store-status")).to_have_text("Closed")
    kitchen.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    store = next(s for s in api(server.url, ADMIN, "GET", "/api/admin/stores") if s["name"] == "Night Canteen")
    assert store["isActive"] is False
    # The admin reopens it from the console: the kitchen's status follows without a reload.
    admin.reload()
    admin.get_by_role("button", name="Open Night Canteen").press("Enter")
    expect(kitchen.locator("#store-status")).to_have_text("Open for orders")
    menu_items = api(server.url, ADMIN, "GET", f"/api/stores/{store['id']}/menu?all=true")
    assert [(i["name"], i["price"], i["isAvailable"]) for i in menu_items] == [("Maggi Noodles", 45, False)]

    admin.get_by_role("button", name=f"Disable {staff.email}").press("Enter")
    expect(admin.locator("#staff-table tr", has_text=staff.email)).to_contain_text("Disabled")
    # The hub closes the kitchen's socket, the refresh is refused: the display is signed out.
    expect(kitchen).to_have_url(re.compile(re.escape(f"{server.url}/login") + r"\?.*reason=expired"), timeout=10_000)


def test_unknown_pages_get_an_html_404_with_a_way_back_and_api_paths_keep_json(server, open_page):
    page = open_page(PHONE)
    response = page.goto(f"{server.url}/menu/nowhere")
    assert response.status == 404 and response.headers["content-type"].startswith("text/html")
    expect(page).to_have_title("Page not found · OrderPulse")
    page.get_by_role("link", name="Go to OrderPulse").press("Enter")
    expect(page).to_have_url(f"{server.url}/login")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/api/nowhere").json() == {"success": False, "message": "Not found."}
        assert client.get("/v1/nowhere").status_code == 404 and "error" in client.get("/v1/nowhere").json()
        icon = client.get("/favicon.ico")
        assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")


def test_console_kitchen_login_and_404_pass_axe_at_phone_and_wall_sizes(server, open_page):
    shop = Shop(server.url, ADMIN.email, ADMIN.password)
    try:
        customer = shop.customer("Meera Iyer")
        shop.place_order(customer, {"Masala Dosa": 1})
        pages = [("login", None, "/login"), ("404", None, "/no-such-page"),
                 ("admin", ADMIN, "/admin"), ("kitchen", shop.staff, "/kitchen")]
        for name, account, path in pages:
            # One sign-in per page; the same page is then checked at the phone and the wall size.
            page = open_page(PHONE)
            if account is not None:
                sign_in(page, server.url, account)
                expect(page).to_have_url(f"{server.url}{path}")
                ready = "body[data-ready='true']" if name == "admin" else "#conn[data-state='live']"
                expect(page.locator(ready)).to_have_count(1)
            else:
                page.goto(f"{server.url}{path}")
            assert page.title().endswith("OrderPulse"), name
            assert page.locator("link[rel='icon']").count() == 1, name
            for viewport in (PHONE, WALL):
                size = f"{viewport['width']}x{viewport['height']}"
                page.set_viewport_size(viewport)
                assert_accessible(page, f"{name} at {size}")
                screenshot(page, f"console-{name}-{size}")
            if name == "kitchen":
                page.get_by_role("button", name="Store & menu").click()
                expect(page.locator("#store-menu tr")).to_have_count(6)
                for viewport in (WALL, PHONE):
                    size = f"{viewport['width']}x{viewport['height']}"
                    page.set_viewport_size(viewport)
                    assert_accessible(page, f"kitchen store controls at {size}")
                    screenshot(page, f"console-kitchen-store-{size}")
            page.context.close()
    finally:
        shop.close()


def test_partner_clients_and_customers_from_the_console_by_keyboard(server, open_page):
    with httpx.Client(base_url=server.url) as client:
        client.post("/api/auth/register", json={"name": "Tara Console", "email": "tara@campus.test",
                                               "password": "tara-pass-1", "role": "student",
                                               "registerNumber": "21CS0042"})
    page = open_page(PHONE)
    sign_in(page, server.url, ADMIN)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the console")).to_be_focused()

    search = page.get_by_label("Search by name or email")
    search.fill("tara@")
    search.press("Enter")
    row = page.locator("#customer-table tr", has_text="tara@campus.test")
    expect(row).to_contain_text("good")
    expect(page.locator("#customer-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name="No-shows of tara@campus.test").press("Enter")
    expect(page.locator("#no-shows")).to_be_focused()
    expect(page.locator("#no-shows")).to_contain_text("No no-shows recorded.")

    name = page.locator("#client-form").get_by_label("Name")
    name.fill("Campus App")
    name.press("Enter")
    client_row = page.locator("#client-table tr", has_text="Campus App")
    expect(client_row).to_contain_text("Active")
    client_id = client_row.locator("code").inner_text()
    assert client_id.startswith("opc_")
    expect(page.locator("#flash")).to_contain_text(client_id)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Revoke Campus App").press("Enter")
    expect(client_row).to_contain_text("Revoked")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/v1/order/65f7a8b9c1234567890abcde", headers={"X-Client-ID": client_id}).status_code == 498
    assert_accessible(page, "admin console after use")


def test_an_admin_clears_a_wrongly_recorded_no_show_from_the_console(server, open_page):
    shop = Shop(server.url, ADMIN.email, ADMIN.password)
    try:
        customer = shop.customer("Dev Kapoor")
        order = shop.place_order(customer, {"Lemon Soda": 1})
        shop.to_ready(order["id"])
        shop.wait_for_status(customer, order["id"], "cancelled")
        assert shop.me(customer)["noShowCount"] == 1
    finally:
        shop.close()
    page = open_page(WALL)
    sign_in(page, server.url, ADMIN)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    search = page.get_by_label("Search by name or email")
    search.fill(customer.email)
    search.press("Enter")
    expect(page.locator("#customer-table tbody tr")).to_have_count(1)
    page.get_by_role("button", name=f"No-shows of {customer.email}").press("Enter")
    number = order["orderNumber"]
    reason = page.get_by_label(f"Why order {number} was no no-show")
    page.get_by_role("button", name="Clear no-show").press("Enter")
    expect(page.locator("#no-shows [role=alert]")).to_have_text("reason is required.")
    reason.fill("Collected; the code was typed on another screen")
    reason.press("Enter")
    expect(page.locator("#no-shows")).to_contain_text("cleared")
    expect(page.locator("#no-shows")).to_contain_text(f"by {ADMIN.name}: Collected; the code was typed on another screen")
    expect(page.locator("#customer-table tbody tr").first.locator("td").nth(2)).to_have_text("0")
    with httpx.Client(base_url=server.url) as client:
        token = client.post("/api/auth/login", json={"email": customer.email, "password": customer.password})
        me = client.get("/api/users/me", headers={"Authorization": f"Bearer {token.json()['data']['accessToken']}"})
        assert (me.json()["data"]["noShowCount"], me.json()["data"]["trustTier"]) == (0, "good")
