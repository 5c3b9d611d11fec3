"""A store employee signs up on /signup, is told an admin must assign their store, and the admin
assigns it from the console's staff list; then they run its kitchen (issue 24)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PHONE, WALL, sign_in
from tests.browser.shop import Account


def test_a_store_employee_signs_up_and_an_admin_assigns_their_store(start_server, make_shop, open_page):
    server = start_server()
    shop = make_shop(server)
    employee = Account("ravi.staff@campus.test", "ravi-pass-12", "Ravi Kumar", "store_employee")

    page = open_page(PHONE)
    page.goto(f"{server.url}/signup")
    page.get_by_label("Store employee").check()
    page.get_by_label("Full name").fill(employee.name)
    page.get_by_label("Employee ID").fill("EMP042")
    page.get_by_label("The store you work at").fill("Campus Cafe")
    page.get_by_label("Phone (optional)").fill("9876543210")
    page.get_by_label("Email").fill(employee.email)
    page.get_by_label("Password").fill(employee.password)
    assert_accessible(page)
    page.get_by_label("Password").press("Enter")
    pending = page.locator("#signup-pending")
    expect(pending).to_have_text(re.compile(r"An admin must assign you to Campus Cafe before you can run it"))
    expect(page.locator("#signup-form")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/signup$"))

    admin = open_page(WALL)
    sign_in(admin, server.url, Account(ADMIN_EMAIL, ADMIN_PASSWORD, "Campus Admin", "admin"))
    row = admin.locator("#staff-table tr", has_text=employee.email)
    expect(row).to_contain_text("Awaiting a store")
    expect(row).to_contain_text("Campus Cafe")
    row.get_by_label(f"Store for {employee.email}").select_option(label="Campus Cafe")
    row.get_by_role("button", name=f"Assign {employee.email} to the chosen store").click()
    expect(admin.locator("#flash")).to_have_text(f"{employee.email} now runs Campus Cafe.")
    expect(admin.locator("#staff-table tr", has_text=employee.email)).to_contain_text("Store staff · Campus Cafe")

    kitchen = open_page(WALL)
    sign_in(kitchen, server.url, employee)
    expect(kitchen.locator("#store-name")).to_contain_text("Campus Cafe")
    order = shop.place_order(shop.customer("Asha Rao"))
    expect(kitchen.locator(f'.kcard[data-id="{order["id"]}"]')).to_be_visible(timeout=5_000)
