"""Screenshots of every page at phone and wall-screen sizes, from a realistic busy lunch hour.

Written to test-artifacts/screenshots/; `UPDATE_DOC_SCREENSHOTS=1` also refreshes the copies in
static/docs/ that the README shows.
"""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, SCREENSHOTS, WALL, screenshot, sign_in


def make_watch_tier(shop, customer) -> None:
    """Two orders taken to ready and left there: two no-shows make the customer watch-tier."""
    for _ in range(2):
        order = shop.place_order(customer, {"Veg Sandwich": 1})
        shop.to_ready(order["id"])
        shop.wait_for_status(customer, order["id"], "cancelled")
    assert shop.me(customer)["trustTier"] == "watch"


def test_screenshots_of_every_page_at_phone_and_wall_sizes(start_server, make_shop, open_page, tmp_path):
    # A short-deadline server first, only to give Meera her two no-shows; then a normal one.
    quick = start_server(READY_NO_SHOW_TIMEOUT_MINUTES="0.02")
    shop = make_shop(quick)
    meera = shop.customer("Meera Iyer")
    make_watch_tier(shop, meera)
    quick.stop()

    server = start_server()
    shop.http.base_url = server.url
    asha = shop.customer("Asha Rao")
    ravi = shop.customer("Ravi Menon", role="faculty")
    karthik = shop.customer("Karthik S")
    priya = shop.customer("Priya Nair")

    shop.place_order(asha, {"Masala Dosa": 2, "Lemon Soda": 2}, instructions="Less spicy, no onions")
    accepted = shop.place_order(ravi, {"Veg Sandwich": 1, "Cold Coffee": 1})
    shop.verify_payment(accepted["id"])
    cooking = shop.place_order(karthik, {"Paneer Burger": 2, "French Fries": 1}, instructions="Extra cheese on both burgers")
    shop.verify_payment(cooking["id"])
    shop.set_status(cooking["id"], "processing")
    cooking2 = shop.place_order(priya, {"Masala Dosa": 1, "Cold Coffee": 2})
    shop.verify_payment(cooking2["id"])
    shop.set_status(cooking2["id"], "processing")
    ready = shop.place_order(asha, {"Paneer Burger": 1, "French Fries": 1, "Cold Coffee": 1},
                             instructions="Extra ketchup please")
    shop.to_ready(ready["id"])

    kitchen = open_page(WALL, motion=True)
    sign_in(kitchen, server.url, shop.staff)
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")
    expect(kitchen.locator(".kcard")).to_have_count(5)
    # One more arrives while the screen is up: a watch-tier customer who still has to confirm.
    pending = shop.place_order(meera, {"Lemon Soda": 1, "Veg Sandwich": 2})
    new_card = kitchen.locator(f'.kcard[data-id="{pending["id"]}"]')
    expect(new_card.locator('[data-commitment="pending"]')).to_contain_text(re.compile(r"\d:\d\d"))
    # The new card's arrival animation ends before the picture is taken.
    new_card.evaluate("card => Promise.all(card.getAnimations()"
                      ".filter(a => a.animationName === 'arrive').map(a => a.finished))")
    screenshot(kitchen, "kitchen-1920x1080")
    kitchen.set_viewport_size(PHONE)
    screenshot(kitchen, "kitchen-390x844")

    phone = open_page(PHONE, motion=True)
    phone.goto(f"{server.url}/login")
    screenshot(phone, "login-390x844")
    sign_in(phone, server.url, asha)
    expect(phone.locator(".order-row")).to_have_count(2)
    screenshot(phone, "orders-390x844")
    phone.locator(f'a[href="/track/{ready["id"]}"]').click()
    expect(phone.locator("#pickup-otp .otp__digit")).to_have_count(6)
    screenshot(phone, "track-ready-390x844")
    phone.screenshot(path=str(SCREENSHOTS / "track-ready-390x844-full.png"), full_page=True)
    phone.set_viewport_size(WALL)
    screenshot(phone, "track-ready-1920x1080")

    watcher = open_page(PHONE, motion=True)
    sign_in(watcher, server.url, meera, next_path=f"/track/{pending['id']}")
    expect(watcher.get_by_role("button", name="I'm on my way")).to_be_visible()
    expect(watcher.locator("#trust-notice")).to_contain_text("missed 2 pickups")
    screenshot(watcher, "track-commitment-390x844")
    watcher.set_viewport_size(WALL)
    screenshot(watcher, "track-commitment-1920x1080")
