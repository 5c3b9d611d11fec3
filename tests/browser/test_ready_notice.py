"""The tracking page's part of issue 12: the ready-time estimate ("Ready around …"), the "Notify me"
offer, and on ready an in-page notice with the chime (Web Audio, counted by wrapping its
oscillators) while the page is open; and the menu page's "About N min wait now", which follows the
kitchen's declared delay and its pause."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, WALL, sign_in

# Counts the oscillators the page starts: the chime is two of them.
COUNT_TONES = """
window.__tones = 0;
const original = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.__tones += 1; return original.call(this); };
"""


def test_tracking_shows_the_estimate_offers_notices_and_chimes_on_ready(start_server, make_shop, open_page):
    server = start_server(ETA_PUSH_SECONDS="0.2")
    shop = make_shop(server)
    customer, other = shop.customer("Kiran Das"), shop.customer("Ravi Kumar")
    ahead = [shop.place_order(other, {"Lemon Soda": 1}) for _ in range(2)]
    order = shop.place_order(customer, {"Veg Sandwich": 1})
    for placed in (*ahead, order):
        shop.verify_payment(placed["id"])  # accepted on payment: two cooks, so this one waits

    phone = open_page(PHONE)
    phone.context.grant_permissions(["notifications"], origin=server.url)
    phone.add_init_script(COUNT_TONES)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    estimate = shop.order(customer, order["id"])["estimatedReadyAt"]
    assert estimate
    eta = phone.locator(".track-hero__eta")
    expect(eta).to_have_text(re.compile(r"^Ready around \d{1,2}:\d{2}"))
    # An order ahead is cancelled: the earlier estimate is pushed to the open page.
    shown = eta.inner_text()
    shop.call(shop.staff, "PATCH", f"/api/orders/{ahead[1]['id']}/status", json={"status": "cancelled"})
    expect(eta).not_to_have_text(shown)
    expect(eta).to_have_text(re.compile(r"^Ready around \d{1,2}:\d{2}"))

    # Headless Chromium has no push service to subscribe with: the page says so and goes on, and
    # the click has unlocked the chime.
    button = phone.get_by_role("button", name="Notify me when it's ready")
    button.focus()
    phone.keyboard.press("Enter")
    expect(phone.locator(".notify__text")).not_to_be_empty()
    expect(button).to_be_enabled()

    shop.set_status(order["id"], "processing")
    shop.set_status(order["id"], "ready")
    expect(phone.locator("#notices")).to_contain_text("Your order is ready.")
    expect(phone.locator(".track-hero__eta")).to_be_hidden()
    expect(phone.locator(".notify")).to_be_hidden()
    phone.wait_for_function("window.__tones >= 2")

    # The menu page says how long an order placed now would take, and follows the kitchen's pace.
    phone.goto(f"{server.url}/stores/{shop.store['id']}")
    wait = phone.locator("#store-wait")
    expect(wait).to_have_text(re.compile(r"^About \d+ min wait now$"))
    before = int(wait.inner_text().split()[1])
    # The kitchen declares itself 20 minutes late, then pauses new orders, from its own screen.
    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    kitchen.get_by_role("button", name="Store & menu").click()
    kitchen.get_by_role("button", name="+20 min").click()
    expect(kitchen.locator("#store-status")).to_have_text("Open · running 20 min late")
    expect(kitchen.get_by_role("button", name="+20 min")).to_have_attribute("aria-pressed", "true")
    expect(wait).to_have_text(f"About {before + 20} min wait now")
    kitchen.get_by_role("button", name="Pause new orders").click()
    expect(kitchen.locator("#store-status")).to_have_text("Paused: no new orders")
    expect(phone.locator("#store-closed")).to_contain_text("has paused new orders")
    expect(wait).to_be_hidden()
    expect(phone.get_by_role("button", name="Add Veg Sandwich")).to_be_disabled()
