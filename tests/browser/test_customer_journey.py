"""The customer's side of an outlet's day in the browser: sign-up, stores, a live menu, the cart,
checkout with the UPI step, tracking, and "My orders", against one real server for the module."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta

import httpx
from bson import ObjectId
import pytest
from playwright.sync_api import expect
from pymongo import MongoClient

from server.domain.clock import utcnow
from tests.browser.a11y import assert_accessible
from tests.browser.conftest import (ADMIN_EMAIL, ADMIN_PASSWORD, PHONE, WALL, context_options, screenshot,
                                    sign_in)
from tests.browser.shop import Account, Shop
from tests.harness import ServerProcess, create_admin, drop_database

LIVE_MS = 3_000  # pages follow within a second; allow for a loaded test machine
QR_DRAWN_MS = 30_000  # the first payment code of a server starts its drawing process (nice 10)


class Site:
    """The module's server, its shop (store, menu, staff) and a way to open checked pages."""

    def __init__(self, server: ServerProcess, env: dict[str, str], shop: Shop, browser) -> None:
        self.server, self.env, self.shop, self.browser = server, env, shop, browser
        self.url = server.url
        self.contexts: list = []
        self.errors: list[str] = []
        self.refused: list[str] = []

    def page(self, viewport=PHONE):
        context = self.browser.new_context(**context_options(viewport))
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        # As open_page does: whatever the pages' Content-Security-Policy refused fails the module.
        page.on("console", lambda message: self.refused.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)
        return page

    def database(self):
        client = MongoClient(self.env["MONGODB_URL"])
        return client, client[self.env["MONGODB_DATABASE"]]

    def record_no_shows(self, customer: Account, count: int) -> None:
        """`count` orders the customer never collected, recorded as the deadline enforcer records them."""
        orders = [self.shop.place_order(customer, {"Lemon Soda": 1}) for _ in range(count)]
        client, database = self.database()
        try:
            now = utcnow()
            for order in orders:
                database.orders.update_one({"_id": ObjectId(order["id"])}, {"$set": {
                    "order_status": "cancelled", "cancellation_reason": "no_show_timeout", "cancelled_at": now,
                    "no_show_at": now - timedelta(seconds=1)}, "$unset": {"next_deadline_at": ""}})
        finally:
            client.close()


@pytest.fixture(scope="module")
def site(browser, mongo, tmp_path_factory):
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"t_shop_{uuid.uuid4().hex[:10]}"}
    server = ServerProcess(env, tmp_path_factory.mktemp("shop-server")).start()
    try:
        create_admin(env, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, name="Campus Admin")
        shop = Shop(server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
        site = Site(server, env, shop, browser)
        yield site
        for context in site.contexts:
            context.close()
        shop.close()
        assert not site.errors, "JavaScript errors on the pages:\n" + "\n".join(site.errors)
        assert not site.refused, "The pages broke their own Content-Security-Policy:\n" + "\n".join(site.refused)
    finally:
        server.kill()
        drop_database(mongo.url, env["MONGODB_DATABASE"])


def signed_in_customer(site: Site, page, name: str = "Asha Rao", next_path: str = "/stores") -> Account:
    customer = site.shop.customer(name)
    sign_in(page, site.url, customer, next_path=next_path)
    return customer


def add_to_cart(page, item: str, times: int = 1) -> None:
    page.get_by_role("button", name=f"Add {item}").click()
    for _ in range(times - 1):
        page.locator(".menu-items").get_by_role("button", name=f"One more {item}").click()


def test_a_student_signs_up_orders_pays_and_collects_with_every_step_live_on_both_screens(site: Site):
    phone = site.page(PHONE)
    phone.goto(f"{site.url}/login")
    phone.get_by_role("link", name="Create an account").click()
    expect(phone).to_have_url(f"{site.url}/signup")
    # Keyboard only: the role choice, then each field in order, then Enter.
    phone.get_by_label("Faculty").check()
    expect(phone.locator("#id-label")).to_have_text("Employee ID")
    phone.get_by_label("A student").check()
    expect(phone.locator("#id-label")).to_have_text("Register number")
    phone.get_by_label("Full name").focus()
    phone.keyboard.type("Asha Rao")
    phone.keyboard.press("Tab")
    phone.keyboard.type("21CS0042")
    phone.keyboard.press("Tab")
    email = f"asha-{uuid.uuid4().hex[:6]}@campus.test"
    phone.keyboard.type(email)
    phone.keyboard.press("Tab")
    phone.keyboard.type("short")
    phone.keyboard.press("Enter")
    expect(phone.locator("#signup-error")).to_contain_text("password")
    expect(phone.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(phone.get_by_label("Password")).to_be_focused()
    phone.keyboard.type("-and-long-enough")
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(f"{site.url}/stores")

    store_link = phone.get_by_role("link", name=re.compile("Campus Cafe"))
    expect(store_link).to_contain_text("Open now")
    store_link.click()
    expect(phone.locator("#store-name")).to_have_text("Campus Cafe")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    expect(phone.get_by_role("heading", name="Burgers")).to_be_visible()
    add_to_cart(phone, "Paneer Burger", 2)
    # Keyboard only: "Add" becomes the stepper, and focus moves to its "+" rather than being lost.
    phone.get_by_role("button", name="Add Cold Coffee").focus()
    phone.keyboard.press("Enter")
    more_coffee = phone.locator(".menu-items").get_by_role("button", name="One more Cold Coffee")
    expect(more_coffee).to_be_focused()
    phone.keyboard.press("Enter")
    phone.keyboard.press("Shift+Tab")
    phone.keyboard.press("Enter")  # "One less": back to one
    expect(phone.locator(".cart-total")).to_contain_text("289.50")
    expect(phone.locator("[data-cart-count]")).to_have_text("3")
    phone.reload()  # the cart is kept on the device
    expect(phone.locator(".cart-total")).to_contain_text("289.50")
    # Nothing is wider than the phone (which would zoom the page out and misplace every tap).
    assert phone.evaluate("() => document.documentElement.scrollWidth") <= PHONE["width"]

    kitchen = site.page(WALL)
    sign_in(kitchen, site.url, site.shop.staff)
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")

    phone.locator("#to-checkout").click()
    expect(phone).to_have_url(f"{site.url}/checkout")
    expect(phone.locator("#checkout-total")).to_contain_text("289.50")
    expect(phone.locator("#policy-notice")).to_have_attribute("data-tier", "good")
    link = phone.locator("#upi-link").get_attribute("href")
    assert link.startswith("upi://pay?") and "am=289.50" in link and "campuscafe%40upi" in link
    # The first code of a server starts its drawing process, at nice 10: on a loaded machine
    # (this suite's three workers and their browsers on two cores) that can take seconds.
    expect(phone.locator("#upi-qr")).to_have_js_property("complete", True, timeout=QR_DRAWN_MS)
    assert phone.locator("#upi-qr").evaluate("img => img.naturalWidth") > 100  # the server drew the code
    expect(phone.locator("#time-left")).to_have_text(re.compile(r"^\d+:\d\d$"))
    phone.get_by_label("UPI transaction ID (optional)").fill("12-34")
    phone.get_by_role("button", name="Place order").click()
    expect(phone.locator("#transaction-error")).to_have_text(
        "UPI transaction ID must be 8-40 alphanumeric characters when provided.")
    expect(phone.get_by_label("UPI transaction ID (optional)")).to_be_focused()
    phone.keyboard.press("ControlOrMeta+a")
    phone.keyboard.type(f"UPI{uuid.uuid4().hex[:10].upper()}")
    phone.keyboard.press("Enter")
    expect(phone).to_have_url(re.compile(re.escape(site.url) + r"/track/[0-9a-f]{24}$"))
    order_id = phone.url.rsplit("/", 1)[1]
    hero = phone.locator(".track-hero")
    expect(hero).to_have_attribute("data-status", "placed")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")

    # A reload of the checkout, or going back to it, shows the one order placed.
    phone.goto(f"{site.url}/checkout")
    expect(phone).to_have_url(f"{site.url}/track/{order_id}")
    customer = site.shop.login(Account(email, "short-and-long-enough", "Asha Rao", "student"))
    listing = site.shop.call(customer, "GET", "/api/orders")
    assert [order["id"] for order in (listing if isinstance(listing, list) else listing["orders"])] == [order_id]

    def kitchen_card(column: str):
        return kitchen.locator(f'.kcol[data-col="{column}"] .kcard[data-id="{order_id}"]')

    expect(kitchen_card("placed")).to_be_visible(timeout=LIVE_MS)  # arrived live: the board was open
    expect(kitchen_card("placed")).to_contain_text("Asha")
    card = kitchen.locator(f'.kcard[data-id="{order_id}"]')
    card.get_by_role("button", name=re.compile("Mark paid")).click()
    expect(hero).to_have_attribute("data-status", "accepted", timeout=LIVE_MS)
    expect(kitchen_card("accepted")).to_be_visible(timeout=LIVE_MS)
    card.get_by_role("button", name=re.compile("Start preparing")).click()
    expect(hero).to_have_attribute("data-status", "processing", timeout=LIVE_MS)
    expect(kitchen_card("processing")).to_be_visible(timeout=LIVE_MS)
    card.get_by_role("button", name=re.compile("Mark ready")).click()
    expect(hero).to_have_attribute("data-status", "ready", timeout=LIVE_MS)
    expect(kitchen_card("ready")).to_be_visible(timeout=LIVE_MS)
    code_box = phone.locator("#pickup-otp")
    expect(code_box).to_have_attribute("data-code", re.compile(r"^\d{6}$"), timeout=LIVE_MS)
    expect(phone.get_by_role("heading", name="Pickup code")).to_be_visible()
    assert "OTP" not in phone.locator("body").inner_text()
    card.get_by_label("Customer's pickup code").fill(code_box.get_attribute("data-code"))
    card.get_by_role("button", name=re.compile("Complete pickup")).click()
    expect(hero).to_have_attribute("data-status", "picked_up", timeout=LIVE_MS)
    expect(card.locator(".kcard__final")).to_have_text("✓ Picked up", timeout=LIVE_MS)

    phone.reload()
    expect(hero).to_have_attribute("data-status", "picked_up")
    for step in ("placed", "accepted", "processing", "ready", "picked_up"):
        expect(phone.locator(f'.timeline__step[data-step="{step}"] .timeline__time')).to_have_text(
            re.compile(r"\d{1,2}:\d\d"), timeout=LIVE_MS)


def test_an_open_menu_follows_sold_out_price_and_closing_and_checkout_gives_the_apis_answer(site: Site):
    shop = site.shop
    phone = site.page(PHONE)
    customer = signed_in_customer(site, phone, "Ravi Menon", next_path=f"/stores/{shop.store['id']}")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    add_to_cart(phone, "French Fries")
    fries = shop.menu["French Fries"]["id"]
    row = phone.locator(f'.menu-item[data-item-id="{fries}"]')

    started = time.monotonic()
    shop.call(shop.staff, "PATCH", f"/api/menu/{fries}", json={"isAvailable": False})
    expect(row).to_have_attribute("data-available", "false", timeout=LIVE_MS)
    sold_out_seconds = time.monotonic() - started  # reported, not asserted: the machine is shared
    expect(row.get_by_role("button")).to_have_count(0)
    expect(row).to_contain_text("Sold out")
    expect(phone.locator("#to-checkout")).to_have_attribute("aria-disabled", "true")
    print(f"sold-out shown {sold_out_seconds * 1000:.0f} ms after the PATCH returned")

    # The cart still holds it: the checkout page shows the API's refusal.
    phone.goto(f"{site.url}/checkout")
    expect(phone.locator("#checkout-error")).to_contain_text("French Fries is currently unavailable.")

    phone.goto(f"{site.url}/stores/{shop.store['id']}")
    burger = shop.menu["Paneer Burger"]["id"]
    shop.call(shop.staff, "PATCH", f"/api/menu/{burger}", json={"price": 135})
    expect(phone.locator(f'.menu-item[data-item-id="{burger}"] .menu-item__price')).to_contain_text("135",
                                                                                                  timeout=LIVE_MS)
    shop.call(shop.staff, "PATCH", f"/api/menu/{fries}", json={"isAvailable": True})
    expect(row).to_have_attribute("data-available", "true", timeout=LIVE_MS)

    shop.call(shop.staff, "PATCH", f"/api/stores/{shop.store['id']}", json={"isActive": False})
    try:
        expect(phone.locator("#store-closed")).to_contain_text("closed right now", timeout=LIVE_MS)
        expect(phone.get_by_role("button", name="Add Paneer Burger")).to_be_disabled()
        phone.goto(f"{site.url}/checkout")
        expect(phone.locator("#checkout-error")).to_contain_text("This store is not accepting orders right now.")
    finally:
        shop.call(shop.staff, "PATCH", f"/api/stores/{shop.store['id']}", json={"isActive": True})
        shop.call(shop.staff, "PATCH", f"/api/menu/{burger}", json={"price": 120})
    assert customer.token

    phone.goto(f"{site.url}/stores/{'0' * 24}")
    expect(phone.get_by_role("alert")).to_contain_text("Store not found.")
    expect(phone.get_by_role("link", name="See the open stores")).to_be_visible()


def test_a_watch_tier_customer_is_told_and_confirms_and_a_restricted_one_cannot_order(site: Site):
    phone = site.page(PHONE)
    watched = signed_in_customer(site, phone, "Meera Iyer", next_path=f"/stores/{site.shop.store['id']}")
    site.record_no_shows(watched, 2)
    add_to_cart(phone, "Masala Dosa")
    phone.locator("#to-checkout").click()
    notice = phone.locator("#policy-notice")
    expect(notice).to_have_attribute("data-tier", "watch")
    expect(notice).to_contain_text("You'll need to confirm you're coming")
    phone.get_by_role("button", name="Place order").click()
    expect(phone).to_have_url(re.compile(r"/track/[0-9a-f]{24}$"))
    expect(phone.locator("#status-heading")).to_have_text("Confirm you're on your way")
    phone.get_by_role("button", name="I'm on my way").click()
    expect(phone.locator(".commit__done")).to_have_text("Thanks! You confirmed you're on your way.")

    restricted = site.page(PHONE)
    blocked = signed_in_customer(site, restricted, "Kiran Das", next_path=f"/stores/{site.shop.store['id']}")
    site.record_no_shows(blocked, 3)
    add_to_cart(restricted, "Lemon Soda")
    restricted.locator("#to-checkout").click()
    error = restricted.locator("#checkout-error")
    expect(error).to_contain_text("Ordering is temporarily restricted due to repeated no-shows until ")
    expect(error).to_contain_text(str(utcnow().year))
    expect(restricted.get_by_role("button", name="Place order")).to_have_count(0)
    assert_accessible(restricted, "checkout, restricted (phone)")


def partner_client(site: Site) -> str:
    """A registered partner app, as `orderpulse client create` leaves it in the database."""
    client_id = f"opc_test_{uuid.uuid4().hex}"
    mongo, database = site.database()
    try:
        database.client_apps.insert_one({"client_id": client_id, "name": "Campus SuperApp", "is_active": True,
                                         "created_at": utcnow()})
    finally:
        mongo.close()
    return client_id


def test_my_orders_shows_an_order_from_a_partner_app_and_its_changes_without_a_reload(site: Site):
    phone = site.page(PHONE)
    customer = signed_in_customer(site, phone, "Dev Shah", next_path="/orders")
    expect(phone.locator("#orders .empty")).to_contain_text("No orders yet")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    session = site.shop.call(customer, "POST", "/api/orders/checkout-session", json={
        "storeId": site.shop.store["id"], "items": [{"menuItemId": site.shop.menu["Veg Sandwich"]["id"], "quantity": 1}]})
    response = httpx.post(f"{site.url}/v1/order", json={"checkoutToken": session["checkoutToken"]},
                          headers={"X-Client-ID": partner_client(site), "Authorization": f"Bearer {customer.token}"})
    assert response.status_code == 201, response.text
    order_id = response.json()["orderId"]
    row = phone.locator(f'a.order-row[href="/track/{order_id}"]')
    expect(row.locator(".chip")).to_have_text("Order placed", timeout=LIVE_MS)
    expect(row).to_contain_text("Veg Sandwich", timeout=LIVE_MS)
    site.shop.verify_payment(order_id)
    expect(row.locator(".chip")).to_have_text("Accepted", timeout=LIVE_MS)
    assert_accessible(phone, "orders (phone)")


SIZES = {"390x844": PHONE, "1920x1080": WALL}


def check(page, name: str) -> None:
    """axe-core on the page as it is at a phone's and a wall screen's size, and a screenshot of
    each (test-artifacts/, git-ignored)."""
    for size, viewport in SIZES.items():
        page.set_viewport_size(viewport)
        assert_accessible(page, f"{name} {size}")
        screenshot(page, f"{name}-{size}")
    page.set_viewport_size(PHONE)


def test_every_customer_page_passes_axe_at_phone_and_wall_sizes(site: Site):
    page = site.page(PHONE)
    page.goto(f"{site.url}/signup")
    check(page, "signup")
    page.goto(f"{site.url}/login")
    check(page, "login")
    signed_in_customer(site, page, "Lata Pillai", next_path="/stores")
    expect(page.locator(".store-card").first).to_be_visible()
    check(page, "stores")
    page.goto(f"{site.url}/stores/{site.shop.store['id']}")
    add_to_cart(page, "Paneer Burger")
    add_to_cart(page, "Lemon Soda", 2)
    check(page, "menu")
    page.locator("#to-checkout").click()
    expect(page.locator("#upi-qr")).to_have_js_property("complete", True, timeout=QR_DRAWN_MS)
    check(page, "checkout")
    # A double tap places one order: the button is disabled by the first, and the API is
    # idempotent on the checkout token anyway.
    page.get_by_role("button", name="Place order").dblclick()
    expect(page.locator(".track-hero")).to_have_attribute("data-status", "placed")
    check(page, "track")
    page.goto(f"{site.url}/orders")
    expect(page.locator("a.order-row")).to_have_count(1)
    check(page, "orders")
