"""The admin console's Webhooks section in Chromium, against a real server: an admin adds an
endpoint for a partner client, sees its secret once, reads its delivery log, rotates, removes."""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect

from tests.browser.a11y import assert_accessible
from tests.browser.conftest import PHONE
from tests.browser.shop import Account
from tests.browser.test_admin_console import api, sign_in
from tests.harness import ServerProcess, create_admin, drop_database

ADMIN = Account("webhook-admin@campus.test", "admin-pass-1", "Hook Admin", "admin")


@pytest.fixture(scope="module")
def server(mongo, tmp_path_factory):
    env = {"MONGODB_URL": mongo.url, "MONGODB_DATABASE": f"t_{uuid.uuid4().hex[:12]}"}
    create_admin(env, email=ADMIN.email, password=ADMIN.password, name=ADMIN.name)
    process = ServerProcess({**env, "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1"},
                            tmp_path_factory.mktemp("webhook-console")).start()
    yield process
    process.kill()
    drop_database(mongo.url, env["MONGODB_DATABASE"])


def test_an_admin_adds_an_endpoint_sees_its_secret_once_reads_its_log_rotates_and_removes_it(server, open_page):
    client_id = api(server.url, ADMIN, "POST", "/api/admin/clients", json={"name": "Hook App"})["clientId"]
    page = open_page(PHONE)
    sign_in(page, server.url, ADMIN)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    expect(page.locator("#webhook-table")).to_contain_text("No webhook endpoints yet.")

    form = page.locator("#webhook-form")
    form.get_by_label("URL").fill("http://10.0.0.7/hooks")
    form.get_by_label("Client id").fill(client_id)
    form.get_by_role("button", name="Add endpoint").click()
    expect(form.locator(".form-error")).to_contain_text("WEBHOOK_ALLOWED_HOSTS")

    form.get_by_label("URL").fill("http://127.0.0.1:9/hooks")
    form.get_by_label("Events (blank: all)").fill("order.completed")
    form.get_by_label("Events (blank: all)").press("Enter")
    secret = page.locator("#webhook-secret code")
    expect(secret).to_contain_text("whsec_")
    first_secret = secret.inner_text()
    row = page.locator("#webhook-table tbody tr", has_text=client_id)
    expect(row).to_contain_text("Enabled")
    expect(row).to_contain_text("order.completed")
    endpoint_id = row.locator("code").first.inner_text()
    assert endpoint_id.startswith("ep_")
    assert first_secret not in page.locator("#webhook-table").inner_text()

    page.get_by_role("button", name=f"Delivery log of {endpoint_id}").click()
    expect(page.locator("#webhook-log")).to_be_focused()
    expect(page.locator("#webhook-log")).to_contain_text("Nothing delivered yet.")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Rotate secret of {endpoint_id}").click()
    expect(row).to_contain_text("Enabled, rotating")
    expect(secret).not_to_have_text(first_secret)
    assert_accessible(page, "admin console, webhooks")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name=f"Remove {endpoint_id}").click()
    expect(page.locator("#webhook-table")).to_contain_text("No webhook endpoints yet.")
