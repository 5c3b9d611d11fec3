"""Pages that stay open outlive their access tokens: the customer's tracking page and the kitchen
display keep following and acting on an order across several expiries, without a reload and
without sending anyone to the sign-in page (issue 24). The server issues 3-second access tokens."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, WALL, sign_in

LIVE_MS = 5_000
ACCESS_SECONDS = 3  # ACCESS_TOKEN_MINUTES=0.05


def session_token(page) -> str:
    return page.evaluate("JSON.parse(sessionStorage.getItem('orderpulse.session')).accessToken")


def outlive(page, token: str) -> None:
    """Wait until `token` has expired and the page holds a newer one (it refreshed by itself)."""
    exp = page.evaluate("(t) => JSON.parse(atob(t.split('.')[1].replace(/-/g, '+').replace(/_/g, '/'))).exp", token)
    page.wait_for_function("(exp) => Date.now() / 1000 > exp + 0.5", arg=exp, timeout=4 * ACCESS_SECONDS * 1000)
    page.wait_for_function("(old) => JSON.parse(sessionStorage.getItem('orderpulse.session')).accessToken !== old",
                           arg=token, timeout=LIVE_MS)


def test_tracking_page_and_kitchen_survive_access_token_expiry(start_server, make_shop, open_page):
    server = start_server(access_token_minutes="0.05")
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    order = shop.place_order(customer)

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    phone = open_page(PHONE)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    for page in (kitchen, phone):
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Two expiries pass on both pages.
    for page in (kitchen, phone):
        outlive(page, session_token(page))
        outlive(page, session_token(page))

    # The kitchen still acts (its calls carry a fresh token) and the phone still follows live.
    card = kitchen.locator(f'.kcol[data-col="placed"] .kcard[data-id="{order["id"]}"]')
    expect(card).to_be_visible(timeout=LIVE_MS)
    card.get_by_role("button", name=re.compile("Mark paid")).click()
    expect(kitchen.locator(f'.kcol[data-col="accepted"] .kcard[data-id="{order["id"]}"]')).to_be_visible(timeout=LIVE_MS)
    hero = phone.locator(".track-hero")
    expect(hero).to_have_attribute("data-status", "accepted", timeout=LIVE_MS)

    # Once more past an expiry: a new order reaches the kitchen, the next step reaches the phone.
    outlive(kitchen, session_token(kitchen))
    second = shop.place_order(customer)
    expect(kitchen.locator(f'.kcard[data-id="{second["id"]}"]')).to_be_visible(timeout=LIVE_MS)
    kitchen.locator(f'.kcard[data-id="{order["id"]}"]').get_by_role(
        "button", name=re.compile("Start preparing")).click()
    expect(hero).to_have_attribute("data-status", "processing", timeout=LIVE_MS)

    for page, path in ((kitchen, "/kitchen"), (phone, f"/track/{order['id']}")):
        expect(page).to_have_url(re.compile(re.escape(server.url + path) + r"$"))
        assert page.evaluate("window.__sameDocument === true")
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
