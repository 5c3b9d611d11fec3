"""A capped store's full slot, as the customer meets it in Chromium: the checkout says when the
order will be ready before they pay (issue 27, order caps)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import PHONE, screenshot, sign_in


def test_a_checkout_past_a_full_slot_says_when_it_will_be_ready(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    shop.call(shop.staff, "PATCH", f"/api/stores/{shop.store['id']}/pace", json={"itemsPerSlot": 2})
    shop.place_order(shop.customer("Ravi Kumar"), {"Paneer Burger": 2})  # this slot is now full

    customer = shop.customer("Asha Rao")
    page = open_page(PHONE)
    sign_in(page, server.url, customer, f"/stores/{shop.store['id']}")
    page.get_by_role("button", name="Add Cold Coffee").click()
    page.locator("#to-checkout").click()
    expect(page).to_have_url(f"{server.url}/checkout")
    notice = page.locator("#slot-notice")
    expect(notice).to_contain_text(re.compile(r"Ready around \d{1,2}:\d\d"))
    expect(notice).to_contain_text("takes the next free slot")
    assert_accessible(page, "checkout with a later slot")
    screenshot(page, "checkout-later-slot-390x844")
