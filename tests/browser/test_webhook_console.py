"""The admin console's Webhooks section in Chromium, against a real server: an admin adds an
endpoint for a partner client, sees its secret once, reads its delivery log, rotates, removes; a
disabled endpoint shows why, its log replays an event, and it is enabled again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from playwright.sync_api import expect
from pymongo import MongoClient

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


def test_a_disabled_endpoint_shows_why_its_log_replays_an_event_and_enabling_it_says_so(server, open_page):
    client_id = api(server.url, ADMIN, "POST", "/api/admin/clients", json={"name": "Gone App"})["clientId"]
    endpoint_id = api(server.url, ADMIN, "POST", "/api/admin/webhooks",
                      json={"clientId": client_id, "url": "http://127.0.0.1:9/gone"})["endpointId"]
    # What a 410 leaves (tests/test_webhooks.py delivers one for real): a failed delivery, the endpoint disabled.
    now = datetime.now(UTC)
    database = MongoClient(server.env["MONGODB_URL"])[server.env["MONGODB_DATABASE"]]
    try:
        database.webhook_endpoints.update_one({"endpoint_id": endpoint_id}, {"$set": {
            "enabled": False, "disabled_reason": "gone: the endpoint answered 410", "disabled_at": now}})
        database.webhook_deliveries.insert_one({
            "event_id": "msg_gone", "endpoint_id": endpoint_id, "client_id": client_id, "order_id": "0" * 24,
            "version": 2, "type": "order.completed", "payload": "{}", "status": "failed", "attempt_count": 1,
            "attempts": [{"at": now, "status_code": 410, "latency_ms": 12.5, "error": "answered 410"}],
            "retry_base": 0, "next_attempt_at": now, "created_at": now, "finished_at": now})
    finally:
        database.client.close()
    page = open_page(PHONE)
    sign_in(page, server.url, ADMIN)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    row = page.locator("#webhook-table tbody tr", has_text=endpoint_id)
    expect(row).to_contain_text("Disabled")
    expect(row).to_contain_text("gone: the endpoint answered 410")
    expect(row).to_contain_text("0 pending, 1 failed")

    page.get_by_role("button", name=f"Delivery log of {endpoint_id}").click()
    log = page.locator("#webhook-log")
    expect(log).to_contain_text("order.completed v2")
    expect(log).to_contain_text(": failed")
    expect(log).to_contain_text("410 in 12.5 ms (answered 410)")
    page.get_by_role("button", name="Replay msg_gone").click()
    expect(page.locator("#flash")).to_have_text("1 delivery scheduled again.")
    expect(log).to_contain_text(": pending; next try")
    assert_accessible(page, "admin console, a disabled webhook endpoint")

    row.get_by_role("button", name=f"Enable {endpoint_id}").click()
    expect(page.locator("#flash")).to_have_text(f"Enabled {endpoint_id}: its pending deliveries go out.")
    expect(row).to_contain_text("Enabled")
    expect(row.get_by_role("button", name=f"Enable {endpoint_id}")).to_have_count(0)
