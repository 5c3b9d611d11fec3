"""An order from placement to pickup, watched live on the kitchen display and the customer's phone."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, WALL, sign_in

LIVE_MS = 3_000  # pages must follow within a second; allow for a loaded test machine


def kitchen_card(page, order_id: str, column: str | None = None):
    scope = page.locator(f'.kcol[data-col="{column}"]') if column else page
    return scope.locator(f'.kcard[data-id="{order_id}"]')


def test_kitchen_and_customer_follow_an_order_from_placed_to_picked_up(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")
    expect(kitchen.locator("#store-name")).to_contain_text("Campus Cafe")

    order = shop.place_order(customer, {"Paneer Burger": 2, "Cold Coffee": 1}, instructions="No onions please")
    card = kitchen_card(kitchen, order["id"], "placed")
    expect(card).to_be_visible(timeout=LIVE_MS)
    expect(card).to_have_class(re.compile(r"kcard--new"))
    expect(card.locator(".kcard__short")).to_have_text("#" + order["orderNumber"].rsplit("-", 1)[1])
    expect(card.locator(".kcard__items")).to_contain_text("2×")
    expect(card.locator(".kcard__items")).to_contain_text("Paneer Burger")
    expect(card.locator(".kcard__note")).to_have_text("No onions please")
    expect(card.locator(".kcard__customer")).to_have_text("Asha")
    expect(card.locator('[data-payment="pending"]')).to_be_visible()
    expect(card.locator(".kcard__age")).to_have_text(re.compile(r"just now|\d+ s"))
    expect(kitchen.locator('.kcol[data-col="placed"] .kcol__count')).to_have_text("1")

    phone = open_page(PHONE)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    hero = phone.locator(".track-hero")
    expect(hero).to_have_attribute("data-status", "placed")
    expect(phone.locator("#status-heading")).to_have_text("Waiting for payment check")
    expect(hero).to_contain_text(order["orderNumber"])
    expect(phone.locator(".items")).to_contain_text("Paneer Burger")
    expect(phone.locator(".items__total-row")).to_contain_text("289.50")
    expect(phone.locator(".facts")).to_contain_text("Waiting for store to verify")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")

    # Payment verified: the order is accepted at once (a good-standing customer).
    card.get_by_role("button", name=re.compile("Mark paid")).click()
    card = kitchen_card(kitchen, order["id"], "accepted")
    expect(card).to_be_visible(timeout=LIVE_MS)
    expect(hero).to_have_attribute("data-status", "accepted", timeout=LIVE_MS)
    expect(phone.locator(".facts")).to_contain_text("Verified")
    expect(phone.locator('.timeline__step[data-step="accepted"]')).to_have_attribute("data-state", "current")

    card.get_by_role("button", name=re.compile("Start preparing")).click()
    card = kitchen_card(kitchen, order["id"], "processing")
    expect(card).to_be_visible(timeout=LIVE_MS)
    expect(hero).to_have_attribute("data-status", "processing", timeout=LIVE_MS)
    expect(phone.locator("#status-heading")).to_have_text("Being prepared")
    expect(phone.locator("#announcer")).to_have_text("Your order is being prepared.")

    card.get_by_role("button", name=re.compile("Mark ready")).click()
    card = kitchen_card(kitchen, order["id"], "ready")
    expect(card).to_be_visible(timeout=LIVE_MS)
    expect(card.locator(".kcard__timer")).to_have_text(re.compile(r"No-show cancel in \d+:\d\d"))
    expect(hero).to_have_attribute("data-status", "ready", timeout=LIVE_MS)
    otp_box = phone.locator("#pickup-otp")
    expect(otp_box).to_have_attribute("data-code", re.compile(r"^\d{6}$"), timeout=LIVE_MS)
    otp = otp_box.get_attribute("data-code")
    expect(otp_box.locator(".otp__digit")).to_have_count(6)
    expect(phone.locator("#ready-countdown")).to_have_text(re.compile(r"^\d+:\d\d$"))
    # The kitchen never sees the code.
    assert otp not in kitchen.locator("#board").inner_text()

    # A wrong code is refused with the API's message; the right one completes the pickup.
    wrong = "000000" if otp != "000000" else "111111"
    code_field = card.get_by_label("Customer's pickup code")
    code_field.fill(wrong)
    card.get_by_role("button", name=re.compile("Complete pickup")).click()
    expect(card.locator(".kcard__message")).to_have_text("Invalid or expired pickup code.")  # the API says OTP; the counter, pickup code
    expect(code_field).to_have_attribute("aria-invalid", "true")
    code_field.fill(otp)
    code_field.press("Enter")

    expect(card.locator(".kcard__final")).to_have_text("✓ Picked up", timeout=LIVE_MS)
    expect(hero).to_have_attribute("data-status", "picked_up", timeout=LIVE_MS)
    expect(phone.locator("#status-heading")).to_have_text("Picked up")
    expect(phone.locator(".otp")).to_be_hidden()
    expect(phone.locator('.timeline__step[data-step="picked_up"]')).to_have_attribute("data-state", "done")
    # Finished orders leave the board after a short delay.
    expect(card).to_have_count(0, timeout=15_000)
    expect(kitchen.locator('.kcol[data-col="ready"] .kcol__empty')).to_be_visible()


def test_kitchen_refreshes_a_card_when_another_screen_moved_the_order_first(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer()
    order = shop.place_order(customer)
    shop.verify_payment(order["id"])

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    card = kitchen_card(kitchen, order["id"], "accepted")
    expect(card).to_be_visible()

    # Another screen starts it just before this one's click reaches the server: the click
    # conflicts (409) and the card catches up instead of failing silently.
    def another_screen_first(route):
        shop.set_status(order["id"], "processing")
        route.continue_()

    kitchen.route(f"**/api/orders/{order['id']}/status", another_screen_first)
    card.get_by_role("button", name=re.compile("Start preparing")).click()
    card = kitchen_card(kitchen, order["id"], "processing")
    expect(card).to_be_visible(timeout=LIVE_MS)
    expect(card.locator(".kcard__message")).to_have_text("This order changed on another screen. It's now up to date.")
    expect(card.get_by_role("button", name=re.compile("ready"))).to_be_visible()


def test_tracking_page_explains_orders_it_cannot_show(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    owner = shop.customer("Asha Rao")
    stranger = shop.customer("Ravi Menon", role="faculty")
    order = shop.place_order(owner)

    phone = open_page(PHONE)
    sign_in(phone, server.url, stranger, next_path=f"/track/{order['id']}")
    expect(phone.get_by_role("alert")).to_contain_text("belongs to someone else")

    phone.goto(f"{server.url}/track/{'0' * 24}")
    expect(phone.get_by_role("alert")).to_contain_text("Order not found")

    phone.goto(f"{server.url}/orders")
    expect(phone.locator("#orders .empty")).to_contain_text("No orders yet")
    phone.get_by_role("button", name="Sign out").click()
    expect(phone.locator("#login-info")).to_have_text("You have signed out.")

    sign_in(phone, server.url, owner)
    row = phone.locator(f'a.order-row[href="/track/{order["id"]}"]')
    expect(row).to_contain_text(order["orderNumber"])
    expect(row.locator(".chip")).to_have_text("Order placed")
    shop.verify_payment(order["id"])
    expect(row.locator(".chip")).to_have_text("Accepted", timeout=LIVE_MS)
    row.click()
    expect(phone.locator(".track-hero")).to_have_attribute("data-status", "accepted")
