"""Both pages survive the server dying: they say so, reconnect by themselves with backoff, and
show the order as it is now (a fresh snapshot), without anyone reloading."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, WALL, sign_in


def test_pages_reconnect_after_the_server_is_killed_and_restarted(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    order = shop.place_order(customer, {"Masala Dosa": 1})

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    phone = open_page(PHONE)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    for page in (kitchen, phone):
        expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    expect(kitchen.locator(f'.kcol[data-col="placed"] .kcard[data-id="{order["id"]}"]')).to_be_visible()

    server.kill()
    for page in (kitchen, phone):
        expect(page.locator("#conn")).to_have_attribute("data-state", re.compile("reconnecting|offline"), timeout=10_000)
    expect(kitchen.locator("#banner")).to_contain_text("Orders shown may be out of date", timeout=10_000)

    # Back on the same port; the order moves on before the pages are back, so only a fresh
    # snapshot (not an event they were connected for) can tell them.
    server.start()
    shop.verify_payment(order["id"])
    shop.set_status(order["id"], "processing")

    for page in (kitchen, phone):
        expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=20_000)
    expect(kitchen.locator(f'.kcol[data-col="processing"] .kcard[data-id="{order["id"]}"]')).to_be_visible()
    expect(kitchen.locator("#banner")).to_be_hidden()
    expect(phone.locator(".track-hero")).to_have_attribute("data-status", "processing")

    # And live again: the next change arrives as an event.
    shop.set_status(order["id"], "ready")
    expect(phone.locator("#pickup-otp")).to_have_attribute("data-code", re.compile(r"^\d{6}$"), timeout=3_000)
    expect(kitchen.locator(f'.kcol[data-col="ready"] .kcard[data-id="{order["id"]}"]')).to_be_visible(timeout=3_000)


def test_tracking_falls_back_to_polling_when_websockets_are_blocked(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    order = shop.place_order(customer, {"Masala Dosa": 1})

    phone = open_page(PHONE)
    # A network that refuses WebSocket upgrades (some campus proxies do).
    phone.route_web_socket(re.compile(r".*/ws.*"), lambda ws: ws.close(code=1011))
    polls: list[tuple[int, str | None]] = []
    phone.on("response", lambda response: polls.append((response.status, response.request.headers.get("if-none-match")))
             if "/poll-status" in response.url else None)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "polling", timeout=15_000)

    shop.verify_payment(order["id"])
    expect(phone.locator(".track-hero")).to_have_attribute("data-status", "accepted", timeout=10_000)
    assert any(status == 200 for status, _ in polls)
    # After the first answer every poll sends the ETag it got.
    assert any(tag for _, tag in polls)


def test_pages_stay_signed_in_and_live_across_access_token_expiry(start_server, make_shop, open_page):
    # Six-second access tokens: the page must refresh them ahead of time and reconnect its
    # socket when the server closes it at the old token's expiry (4401).
    server = start_server(ACCESS_TOKEN_MINUTES="0.1")
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    order = shop.place_order(customer, {"Masala Dosa": 1})

    phone = open_page(PHONE)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    first_token = phone.evaluate("JSON.parse(sessionStorage.getItem('orderpulse.session')).accessToken")

    # The server closes the socket at the old token's expiry (4401) and the page opens another.
    phone.wait_for_event("websocket", timeout=15_000)
    assert phone.evaluate("JSON.parse(sessionStorage.getItem('orderpulse.session')).accessToken") != first_token
    shop.verify_payment(order["id"])
    expect(phone.locator(".track-hero")).to_have_attribute("data-status", "accepted", timeout=3_000)
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    expect(phone).to_have_url(re.compile(f"/track/{order['id']}$"))
