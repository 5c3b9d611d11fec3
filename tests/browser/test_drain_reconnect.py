"""A page told by a stopping server to come back later waits that long (static/js/live.js), then
resubscribes and shows the order as it is now: the `reconnect` frame and close `1012` of a drain
(REALTIME.md). The server's drain itself is tested in tests/realtime/test_drain.py; here the page's
socket is routed through Playwright so the frame can be sent at a chosen moment with a chosen delay."""

from __future__ import annotations

import json
import time

from playwright.sync_api import expect

from tests.browser.conftest import PHONE, sign_in

RETRY_AFTER_MS = 3000


def test_the_page_waits_retry_after_ms_then_resubscribes_to_the_current_state(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    order = shop.place_order(customer, {"Masala Dosa": 1})

    page = open_page(PHONE)
    connections: list[tuple[float, object]] = []

    def route(socket) -> None:
        socket.connect_to_server()  # frames pass both ways unchanged
        connections.append((time.monotonic(), socket))

    page.route_web_socket(f"{server.ws_url}", route)
    sign_in(page, server.url, customer, next_path=f"/track/{order['id']}")
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert len(connections) == 1

    # What a draining server sends: the delay, then close 1012.
    _, socket = connections[0]
    socket.send(json.dumps({"type": "reconnect", "retryAfterMs": RETRY_AFTER_MS}))
    socket.close(code=1012, reason="")
    closed_at = time.monotonic()
    shop.verify_payment(order["id"])  # while it waits: only the snapshot can tell it

    expect(page.locator(".track-hero")).to_have_attribute("data-status", "accepted", timeout=15_000)
    expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    assert len(connections) == 2
    waited = connections[1][0] - closed_at
    # Not the first backoff step (250-500 ms): the server's delay, plus the page's jitter (< 500 ms).
    assert RETRY_AFTER_MS / 1000 - 0.1 <= waited <= RETRY_AFTER_MS / 1000 + 2.0, waited
