"""The kitchen at rush hour in Chromium (issue 27): the whole flow by keyboard alone, item marks
shared between screens, a ready undone on the customer's open page, and the printed ticket."""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

from playwright.sync_api import expect
from pypdf import PdfReader

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import PHONE, WALL, screenshot, sign_in
from tests.browser.test_live_flow import LIVE_MS, kitchen_card
from tests.support import until_sync

# Counts every pointer or mouse press the page sees: a keyboard-only flow must leave it at zero
# (keys that press a button fire a click, but never a pointerdown or mousedown).
COUNT_MOUSE = """
window.__mouse = 0;
// Headless Chromium has no print dialog to close: a page's window.print() would hold the page
// "being printed" forever. The test records the call and prints the page itself with page.pdf(),
// which renders the same print media through the same engine.
window.__prints = 0;
window.print = () => { window.__prints += 1; };
for (const type of ["pointerdown", "mousedown", "mouseup", "pointerup", "wheel"]) {
  window.addEventListener(type, () => { window.__mouse += 1; }, true);
}
"""


def sign_in_by_keyboard(page, base_url: str, account, next_path: str) -> None:
    page.goto(f"{base_url}/login?next={next_path}")
    page.get_by_label("Email").fill(account.email)
    page.get_by_label("Password").fill(account.password)
    page.get_by_label("Password").press("Enter")
    expect(page).to_have_url(re.compile(re.escape(base_url + next_path) + r"$"))


def short(order: dict) -> str:
    return order["orderNumber"].rsplit("-", 1)[1]


def test_the_whole_kitchen_flow_by_keyboard_alone(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    first = shop.place_order(customer, {"Paneer Burger": 2, "Cold Coffee": 1}, instructions="No onions please")
    second = shop.place_order(customer, {"Paneer Burger": 1, "French Fries": 1})

    kitchen = open_page(WALL)
    kitchen.add_init_script(COUNT_MOUSE)
    sign_in_by_keyboard(kitchen, server.url, shop.staff, "/kitchen")
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")
    expect(kitchen.locator(".kkeys")).to_contain_text("Enter advance")
    allday = kitchen.locator("#allday")
    expect(allday.locator('[data-item="Paneer Burger"]')).to_contain_text("×3")
    expect(kitchen.locator("#typical-prep")).to_contain_text("Typical preparation here: 8 min")

    # Select with a number key; advance with Enter: paid (accepted at once), preparing.
    card = kitchen_card(kitchen, first["id"])
    expect(card.locator(".kcard__key")).to_have_text("1")
    kitchen.keyboard.press("1")
    expect(card).to_be_focused()
    kitchen.keyboard.press("Enter")
    expect(kitchen_card(kitchen, first["id"], "accepted")).to_be_visible(timeout=LIVE_MS)
    expect(card).to_be_focused()
    kitchen.keyboard.press("Enter")
    expect(kitchen_card(kitchen, first["id"], "processing")).to_be_visible(timeout=LIVE_MS)
    expect(card.locator(".kcard__heat")).to_have_text(re.compile(r"^0:\d\d · typical 8 min$"))
    expect(card.locator(".kcard__heat")).to_have_attribute("data-heat", "ok")

    # Arrows move between cards and back; S strikes the next item; the all-day panel follows.
    kitchen.keyboard.press("ArrowLeft")
    expect(kitchen_card(kitchen, second["id"])).to_be_focused()
    kitchen.keyboard.press("ArrowRight")
    expect(card).to_be_focused()
    kitchen.keyboard.press("s")
    expect(card.locator('.kitem[data-index="0"]')).to_have_attribute("aria-pressed", "true", timeout=LIVE_MS)
    expect(allday.locator('[data-item="Paneer Burger"]')).to_contain_text("×1")
    kitchen.keyboard.press("s")
    expect(card.locator('.kitem[data-index="1"]')).to_have_attribute("aria-pressed", "true", timeout=LIVE_MS)
    expect(card.locator(".kcard__hint")).to_have_text("All items done: Mark ready (Enter)")
    expect(card.get_by_role("button", name=re.compile("Mark ready"))).to_have_class(re.compile("kbtn--suggest"))
    expect(allday.locator('[data-item="Cold Coffee"]')).to_have_count(0)
    screenshot(kitchen, "kitchen-keyboard-1920x1080")
    assert_accessible(kitchen, "the keyboard kitchen")

    # Ready by mistake: undo from the card (U), then ready again and undo from the recall (R, U).
    kitchen.keyboard.press("Enter")
    expect(kitchen_card(kitchen, first["id"], "ready")).to_be_visible(timeout=LIVE_MS)
    expect(card).to_be_focused()
    kitchen.keyboard.press("u")
    expect(kitchen_card(kitchen, first["id"], "processing")).to_be_visible(timeout=LIVE_MS)
    expect(card.locator(".kcard__message")).to_contain_text("put back to preparing")
    expect(card).to_be_focused()
    kitchen.keyboard.press("Enter")
    expect(kitchen_card(kitchen, first["id"], "ready")).to_be_visible(timeout=LIVE_MS)
    kitchen.keyboard.press("r")
    recall = kitchen.locator("#recall-dialog")
    expect(recall).to_be_visible()
    entry = recall.locator(f'.krecall__item[data-id="{first["id"]}"]')
    expect(entry).to_be_focused()
    assert_accessible(kitchen, "the kitchen's recall")
    expect(recall.locator("#recall-detail")).to_contain_text(f"#{short(first)}")
    expect(recall.locator("#recall-detail")).to_contain_text("Ready undone by Kavya")
    kitchen.keyboard.press("u")
    expect(recall).to_be_hidden()
    expect(kitchen_card(kitchen, first["id"], "processing")).to_be_visible(timeout=LIVE_MS)
    assert len(shop.order(shop.staff, first["id"])["readyUndos"]) == 2

    # Print the selected card's kitchen ticket (P): what the 80 mm printer gets is a PDF page.
    kitchen.keyboard.press("1")
    kitchen.keyboard.press("ArrowRight")
    kitchen.keyboard.press("ArrowRight")
    expect(card).to_be_focused()
    kitchen.keyboard.press("p")
    expect(kitchen.locator("body")).to_have_attribute("data-printed", "1")
    assert kitchen.evaluate("window.__prints") == 1
    kitchen.emulate_media(media="print")
    pdf = kitchen.pdf(prefer_css_page_size=True, print_background=True)
    kitchen.emulate_media(media="screen")
    reader = PdfReader(io.BytesIO(pdf))
    page = reader.pages[0]
    assert round(float(page.mediabox.width) / 72 * 25.4) == 80  # an 80 mm roll
    text = page.extract_text()
    for expected in ("KITCHEN TICKET", f"#{short(first)}", first["orderNumber"], "2×", "Paneer Burger",
                     "Cold Coffee", "Note: No onions please", "For Asha"):
        assert expected in text, (expected, text)
    assert "Preparing" not in text and "All day" not in text  # only the ticket prints
    kitchen.keyboard.press(card.locator(".kcard__key").inner_text())  # printing took the focus: select again
    expect(card).to_be_focused()
    kitchen.keyboard.press("Shift+P")
    expect(kitchen.locator("body")).to_have_attribute("data-printing", "receipt")
    kitchen.emulate_media(media="print")
    receipt = PdfReader(io.BytesIO(kitchen.pdf(prefer_css_page_size=True))).pages[0].extract_text()
    kitchen.emulate_media(media="screen")
    assert "RECEIPT" in receipt and "Total ₹" in receipt and "Thank you" in receipt, receipt

    assert kitchen.evaluate("window.__mouse") == 0


def test_enter_pressed_while_the_last_step_is_saving_runs_once_it_is_saved(start_server, make_shop, open_page):
    """The live event often moves a card before the answer to its own click arrives: the cook sees
    the next step and presses Enter while the card is still saving. That press is kept and runs
    after the save, not dropped; a press on a save that fails is dropped."""
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Asha Rao")
    order = shop.place_order(customer, {"Paneer Burger": 1})
    kitchen = open_page(WALL)
    held: list = []

    def hold(route):  # the server applies the change; the page gets the answer when released
        held.append((route, route.fetch()))

    kitchen.route(re.compile(rf".*/api/orders/{order['id']}/payment-status$"), hold)
    sign_in_by_keyboard(kitchen, server.url, shop.staff, "/kitchen")
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")
    card = kitchen_card(kitchen, order["id"])
    kitchen.keyboard.press("1")
    expect(card).to_be_focused()
    kitchen.keyboard.press("Enter")  # Mark paid: accepted at once
    expect(kitchen_card(kitchen, order["id"], "accepted")).to_be_visible(timeout=LIVE_MS)  # by the event
    expect(card).to_have_attribute("aria-busy", "true")  # the answer is held
    kitchen.keyboard.press("Enter")  # Start preparing, pressed while saving
    assert len(held) == 1 and shop.order(shop.staff, order["id"])["orderStatus"] == "accepted"
    route, answer = held.pop()
    route.fulfill(response=answer)
    expect(kitchen_card(kitchen, order["id"], "processing")).to_be_visible(timeout=LIVE_MS)
    expect(card).to_have_attribute("aria-busy", "false")
    assert shop.order(shop.staff, order["id"])["orderStatus"] == "processing"

    # A save that fails drops the press made during it: another screen marked it ready first.
    def another_screen_first(route):
        shop.set_status(order["id"], "ready")
        held.append((route, route.fetch()))

    kitchen.route(re.compile(rf".*/api/orders/{order['id']}/status$"), another_screen_first)
    kitchen.keyboard.press("Enter")  # Mark ready: refused (409), the card catches up
    expect(kitchen_card(kitchen, order["id"], "ready")).to_be_visible(timeout=LIVE_MS)
    expect(card).to_have_attribute("aria-busy", "true")
    kitchen.keyboard.press("Enter")
    route, answer = held.pop()
    assert answer.status == 409
    route.fulfill(response=answer)
    expect(card.locator(".kcard__message")).to_have_text("This order changed on another screen. It's now up to date.")
    expect(card).to_have_attribute("aria-busy", "false")
    assert held == [] and shop.order(shop.staff, order["id"])["orderStatus"] == "ready"


def test_item_marks_reach_a_second_screen_and_survive_its_reload(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer()
    order = shop.place_order(customer, {"Paneer Burger": 1, "French Fries": 2})
    shop.verify_payment(order["id"])
    shop.set_status(order["id"], "processing")
    one, two = open_page(WALL), open_page(WALL)
    for screen in (one, two):
        sign_in(screen, server.url, shop.staff)
        expect(screen.locator("#conn")).to_have_attribute("data-state", "live")
    kitchen_card(one, order["id"], "processing").locator('.kitem[data-index="1"]').press("Enter")
    struck = kitchen_card(two, order["id"], "processing").locator('.kitem[data-index="1"]')
    expect(struck).to_have_attribute("aria-pressed", "true", timeout=LIVE_MS)
    expect(two.locator('#allday [data-item="French Fries"]')).to_have_count(0)
    two.reload()
    expect(kitchen_card(two, order["id"], "processing").locator('.kitem[data-index="1"]')).to_have_attribute(
        "aria-pressed", "true")
    expect(kitchen_card(two, order["id"], "processing").locator('.kitem[data-index="0"]')).to_have_attribute(
        "aria-pressed", "false")


def test_an_undone_ready_sends_the_customers_page_back_to_preparing_and_says_why(start_server, make_shop, open_page):
    server = start_server(ready_undo_seconds="2.5")
    shop = make_shop(server)
    customer = shop.customer()
    order = shop.place_order(customer)
    shop.verify_payment(order["id"])
    shop.set_status(order["id"], "processing")
    phone = open_page(PHONE)
    sign_in(phone, server.url, customer, next_path=f"/track/{order['id']}")
    hero = phone.locator(".track-hero")
    expect(hero).to_have_attribute("data-status", "processing")
    shop.set_status(order["id"], "ready")
    answer = shop.http.post(f"/api/orders/{order['id']}/undo-ready",
                            headers={"Authorization": f"Bearer {shop.staff.token}"})
    assert answer.status_code == 200, answer.text
    expect(hero).to_have_attribute("data-status", "processing", timeout=LIVE_MS)
    expect(phone.locator("#status-heading")).to_have_text("Not ready after all")
    expect(hero).to_contain_text("marked your order ready by mistake")
    expect(phone.locator(".otp")).to_be_hidden()
    phone.reload()
    expect(phone.locator("#status-heading")).to_have_text("Not ready after all")
    # After READY_UNDO_SECONDS the undo is refused with a clear message; the order stays ready.
    shop.set_status(order["id"], "ready")
    expect(hero).to_have_attribute("data-status", "ready", timeout=LIVE_MS)

    ready_at = datetime.fromisoformat(shop.order(shop.staff, order["id"])["readyAt"].replace("Z", "+00:00"))
    until_sync(lambda: datetime.now(timezone.utc) > ready_at + timedelta(seconds=2.6), timeout=10,
               message="the undo window to pass")
    response = shop.http.post(f"/api/orders/{order['id']}/undo-ready",
                              headers={"Authorization": f"Bearer {shop.staff.token}"})
    assert response.status_code == 409
    message = response.json()["message"]
    assert message.startswith(f"Too late to undo: order {order['orderNumber']} was marked ready more than 2.5 s ago.")
    expect(hero).to_have_attribute("data-status", "ready")


def test_the_kitchen_ticket_for_the_readme(start_server, make_shop, open_page):
    """The printed ticket as the README shows it: the print media at the ticket's width."""
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer("Ravi Kumar")
    order = shop.place_order(customer, {"Paneer Burger": 2, "French Fries": 1, "Cold Coffee": 2},
                             instructions="Extra spicy")
    kitchen = open_page({"width": 320, "height": 560}, mobile=False)
    kitchen.add_init_script(COUNT_MOUSE)
    sign_in(kitchen, server.url, shop.staff)
    card = kitchen_card(kitchen, order["id"], "placed")
    expect(card).to_be_visible(timeout=LIVE_MS)
    card.focus()
    kitchen.keyboard.press("p")
    kitchen.emulate_media(media="print")
    expect(kitchen.locator("#print-area .t-number")).to_have_text(f"#{short(order)}")
    screenshot(kitchen, "kitchen-ticket-80mm")


def test_a_cap_set_on_the_kitchen_defers_the_menu_live_and_reopens_by_itself(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    customer = shop.customer()
    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, shop.staff)
    expect(kitchen.locator("#conn")).to_have_attribute("data-state", "live")
    kitchen.locator("#store-controls").press("Enter")
    cap = kitchen.get_by_label("Items taken per 15 minutes (blank: no cap)")
    cap.fill("0")
    cap.press("Enter")
    expect(kitchen.locator("#store-dialog-error")).to_have_text(
        "itemsPerSlot must be a whole number of items from 1 to 1000, or null for no cap.")
    cap.fill("2")
    cap.press("Enter")
    expect(kitchen.locator("#store-dialog-error")).to_be_hidden()
    until_sync(lambda: shop.call(None, "GET", f"/api/stores/{shop.store['id']}")["itemsPerSlot"] == 2,
               message="the cap to be saved")
    kitchen.keyboard.press("Escape")

    phone = open_page(PHONE)
    phone.goto(f"{server.url}/stores/{shop.store['id']}")
    expect(phone.locator("#conn")).to_have_attribute("data-state", "live")
    notice = phone.locator("#store-capacity")
    expect(notice).to_be_hidden()
    order = shop.place_order(customer, {"Paneer Burger": 2})  # the slot is full
    expect(notice).to_contain_text("The kitchen is busy: orders placed now are ready around", timeout=LIVE_MS)
    # The kitchen makes it: the slot has room again, and the menu says so without a reload.
    shop.to_ready(order["id"])
    expect(notice).to_be_hidden(timeout=LIVE_MS)
