"""Watch-tier customers: the commitment countdown, "I'm on my way", and what an expired window
looks like on both screens. Deadlines are shortened so the test runs in seconds."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, WALL, sign_in

LIVE_MS = 3_000
# A ready order is a no-show after ~1.2 s; a commitment window lasts 9 s.
QUICK_DEADLINES = {"READY_NO_SHOW_TIMEOUT_MINUTES": "0.02", "ORDER_COMMITMENT_TIMEOUT_MINUTES": "0.15"}


def test_watch_tier_customer_confirms_then_lets_a_window_expire(start_server, make_shop, open_page):
    server = start_server(**QUICK_DEADLINES)
    shop = make_shop(server)
    customer = shop.customer("Meera Iyer")

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")

    # Two orders taken to ready and never collected: the phone shows each no-show as it happens.
    phone = open_page(PHONE)
    first = shop.place_order(customer, {"Veg Sandwich": 1})
    sign_in(phone, server.url, customer, next_path=f"/track/{first['id']}")
    shop.to_ready(first["id"])
    hero = phone.locator(".track-hero")
    expect(hero).to_have_attribute("data-status", "cancelled", timeout=10_000)
    expect(hero).to_contain_text("wasn't collected in time")
    expect(phone.locator('.timeline__step[data-step="cancelled"]')).to_be_visible()
    second = shop.place_order(customer, {"Veg Sandwich": 1})
    shop.to_ready(second["id"])
    shop.wait_for_status(customer, second["id"], "cancelled")
    assert shop.me(customer)["trustTier"] == "watch"

    # Order three: the countdown runs and "I'm on my way" confirms it on both screens.
    third = shop.place_order(customer, {"Masala Dosa": 1})
    assert third["commitmentDeadlineAt"]
    phone.goto(f"{server.url}/track/{third['id']}")
    expect(phone.locator("#trust-notice")).to_contain_text("You've missed 2 pickups")
    expect(phone.locator("#status-heading")).to_have_text("Confirm you're on your way")
    countdown = phone.locator(".commit__time")
    expect(countdown).to_have_text(re.compile(r"^0:0\d$"))
    first_reading = countdown.inner_text()
    expect(countdown).not_to_have_text(first_reading, timeout=3_000)
    assert countdown.inner_text() < first_reading, "the countdown should tick down"

    card = kitchen.locator(f'.kcard[data-id="{third["id"]}"]')
    expect(card.locator('[data-commitment="pending"]')).to_contain_text(re.compile(r"\d:\d\d"))
    phone.get_by_role("button", name="I'm on my way").click()
    expect(phone.locator(".commit__done")).to_have_text("Thanks! You confirmed you're on your way.")
    expect(phone.get_by_role("button", name="I'm on my way")).to_be_hidden()
    expect(card.locator('[data-commitment="confirmed"]')).to_be_visible(timeout=LIVE_MS)
    # Confirmed and then paid: the order is accepted as usual.
    card.get_by_role("button", name=re.compile("Mark paid")).click()
    expect(kitchen.locator(f'.kcol[data-col="accepted"] .kcard[data-id="{third["id"]}"]')).to_be_visible(timeout=LIVE_MS)
    expect(hero).to_have_attribute("data-status", "accepted", timeout=LIVE_MS)

    # Order four: nobody confirms; when the window closes both screens show the cancellation.
    fourth = shop.place_order(customer, {"Lemon Soda": 1})
    phone.goto(f"{server.url}/track/{fourth['id']}")
    expect(phone.get_by_role("button", name="I'm on my way")).to_be_visible()
    card = kitchen.locator(f'.kcard[data-id="{fourth["id"]}"]')
    expect(card.locator('[data-commitment="pending"]')).to_be_visible()
    expect(hero).to_have_attribute("data-status", "cancelled", timeout=15_000)
    expect(phone.locator("#status-heading")).to_have_text("Order cancelled")
    expect(hero).to_contain_text("You didn't confirm you were on your way before the deadline")
    expect(phone.get_by_role("button", name="I'm on my way")).to_be_hidden()
    expect(card.locator(".kcard__final")).to_have_text("Cancelled · Customer didn't confirm in time", timeout=LIVE_MS)
    expect(card).to_have_count(0, timeout=15_000)

    # Three no-shows: the customer is now restricted, and the pages say until when.
    phone.goto(f"{server.url}/orders")
    expect(phone.locator("#trust-notice")).to_have_attribute("data-tier", "restricted")
    expect(phone.locator("#trust-notice")).to_contain_text("Ordering is paused until")


def test_an_expired_commitment_confirmation_shows_the_api_message(start_server, make_shop, open_page):
    server = start_server(**QUICK_DEADLINES)
    shop = make_shop(server)
    customer = shop.customer("Meera Iyer")
    for _ in range(2):
        order = shop.place_order(customer, {"Veg Sandwich": 1})
        shop.to_ready(order["id"])
        shop.wait_for_status(customer, order["id"], "cancelled")
    order = shop.place_order(customer, {"Lemon Soda": 1})

    phone = open_page(PHONE)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    button = phone.get_by_role("button", name="I'm on my way")
    expect(button).to_be_visible()
    # The confirmation reaches the server only after the window closed.
    phone.route(f"**/api/orders/{order['id']}/confirm-commitment",
                lambda route: (shop.wait_for_status(customer, order["id"], "cancelled", timeout=20), route.continue_()))
    button.click()
    expect(phone.get_by_role("alert").filter(has_text="Commitment window has expired")).to_be_visible(timeout=20_000)
    expect(phone.locator(".track-hero")).to_have_attribute("data-status", "cancelled", timeout=LIVE_MS)
