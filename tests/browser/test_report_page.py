"""The store's day in numbers in Chromium (issue 27): today's orders of a store, made through the
API, shown as the report's figures, chart and tables; the CSV downloads; the store's pickup board
links are made and revoked from the same page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import WALL, screenshot, sign_in


def test_the_report_page_shows_the_day_and_manages_board_links(start_server, make_shop, open_page, tmp_path):
    server = start_server()
    shop = make_shop(server)
    customers = [shop.customer(name) for name in ("Meera Iyer", "Rohan Das", "Asha Rao")]
    orders = [shop.place_order(c, {"Masala Dosa": 2, "Cold Coffee": 1}) for c in customers]
    orders.append(shop.place_order(customers[0], {"Paneer Burger": 1}))
    for order in orders[:3]:
        shop.to_ready(order["id"])
    code = shop.order(customers[0], orders[0]["id"])["pickupOtp"]
    shop.call(shop.staff, "POST", f"/api/orders/{orders[0]['id']}/verify-otp", json={"otp": code})
    shop.set_status(orders[3]["id"], "cancelled")
    expected = shop.call(shop.staff, "GET", f"/api/stores/{shop.store['id']}/report")

    page = open_page(WALL, mobile=False)
    sign_in(page, server.url, shop.staff, "/report")
    expect(page.locator("body")).to_have_attribute("data-loaded", re.compile(r"\d{4}-\d{2}-\d{2}"))
    figure = lambda label: page.locator(f"[data-figure='{label}'] dd")  # noqa: E731
    expect(figure("Orders")).to_have_text(str(expected["orders"]))
    expect(figure("Cancelled")).to_have_text(str(expected["cancellations"]["total"]))
    expect(figure("Late")).to_have_text(f"{expected['late']['count']} of {expected['late']['of']}")
    expect(page.locator("#items tbody tr").first).to_contain_text("Masala Dosa")
    expect(page.locator("#cancellations tbody")).to_contain_text("Cancelled by store")
    assert page.locator("#chart").evaluate("image => image.complete && image.naturalWidth") == 720
    screenshot(page, "report-1920x1080")
    assert_accessible(page, "the day in numbers")

    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    saved = tmp_path / "report.csv"
    download.value.save_as(saved)
    assert saved.read_text().splitlines()[0] == "section,name,measure,value"
    assert f",orders,{expected['orders']}" in saved.read_text()

    page.get_by_label("Screen name").fill("Counter TV")
    page.get_by_role("button", name="Make a board link").click()
    link = page.locator("#new-link a")
    expect(link).to_have_text(re.compile(rf"/board/{shop.store['id']}#key=opd_"))
    expect(page.locator("#displays li")).to_have_count(1)
    page.get_by_label("Read new ready numbers aloud").check()
    expect(page.locator("#announce")).to_be_checked()
    board = page.context.new_page()
    board.goto(link.inner_text())
    expect(board.locator("#ready .num")).to_have_count(2)
    page.get_by_role("button", name="Revoke the board link Counter TV").click()
    expect(page.locator("#displays li")).to_have_count(0)
    expect(board.locator("#notice")).to_contain_text("not valid any more", timeout=10_000)
    assert shop.call(shop.staff, "GET", f"/api/stores/{shop.store['id']}/board")["announce"] is True


def test_a_read_aloud_choice_made_while_the_links_load_is_not_undone(start_server, make_shop, open_page):
    """The box is set from the store's board settings each time the links load (after making one,
    too): a load that began before the staff changed the box must not put it back."""
    server = start_server()
    shop = make_shop(server)
    page = open_page(WALL, mobile=False)
    held = []

    def hold(route) -> None:
        """The board settings' answers are read from the server at once and handed to the page
        only when the test lets them go; the page is told how many are held, to wait on."""
        if route.request.method != "GET":
            route.continue_()
            return
        held.append((route, route.fetch()))
        page.evaluate("count => { window.heldSettings = count; }", len(held))

    def release_when_held() -> None:
        page.wait_for_function("() => window.heldSettings >= 1")
        for route, answer in held:
            route.fulfill(response=answer)
        held.clear()

    page.route(re.compile(r".*/api/stores/[0-9a-f]+/board$"), hold)
    sign_in(page, server.url, shop.staff, "/report")
    release_when_held()  # the page's first load
    expect(page.locator("#announce")).not_to_be_checked()

    page.evaluate("() => { window.heldSettings = 0; }")
    page.get_by_label("Screen name").fill("Counter TV")
    page.get_by_role("button", name="Make a board link").click()
    expect(page.locator("#new-link a")).to_be_visible()
    page.wait_for_function("() => window.heldSettings >= 1")  # the reload after making the link: held
    page.get_by_label("Read new ready numbers aloud").check()
    release_when_held()  # the answer read before the change arrives after it
    expect(page.locator("#displays li")).to_have_count(1)
    expect(page.locator("#announce")).to_be_checked()
    assert shop.call(shop.staff, "GET", f"/api/stores/{shop.store['id']}/board")["announce"] is True
