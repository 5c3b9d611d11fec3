"""A person who forgot their password, in Chromium: the link on the sign-in page, the mail from a
real SMTP server (aiosmtpd in its own process), the page the link opens, and signing in with the
new password; and the verification link of a new account."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import PHONE, screenshot, sign_in
from tests.browser.shop import Account
from tests.support import until_sync
from tests.test_account_mail import RESET, VERIFY, SmtpReceiver


@pytest.fixture
def smtp(tmp_path):
    receiver = SmtpReceiver(tmp_path / "smtp")
    yield receiver
    receiver.stop()


def _link(smtp: SmtpReceiver, address: str, subject: str, base_url: str) -> str:
    def mail():
        return [m for m in smtp.mails_to(address) if m["Subject"] == subject]
    until_sync(mail, 15, message=f"{subject!r} to {address}")
    text = mail()[0].get_payload(decode=True).decode()
    return re.search(re.escape(base_url) + r"/[a-z-]+/[A-Za-z0-9_-]+", text).group(0)


def test_a_forgotten_password_is_reset_through_the_mailed_link(start_server, make_shop, open_page, smtp):
    server = start_server(smtp_url=smtp.url)
    shop = make_shop(server)
    customer = shop.customer()
    page = open_page(PHONE)
    page.goto(f"{server.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    expect(page).to_have_url(f"{server.url}/forgot-password")
    page.get_by_label("Email").fill(customer.email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("a link to reset its password is on its way")
    screenshot(page, "forgot-password-390x844")

    page.goto(_link(smtp, customer.email, RESET, server.url))
    expect(page.get_by_role("heading", name="Choose a new password")).to_be_visible()
    page.locator("#reset-password").fill("my-new-secret-9")
    page.get_by_label("New password again").fill("my-new-secret-8")
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("alert")).to_have_text("The two passwords differ.")
    page.get_by_label("New password again").fill("my-new-secret-9")
    page.get_by_role("button", name="Change the password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password is changed.")
    screenshot(page, "reset-password-390x844")

    page.get_by_role("link", name="Sign in").first.click()
    sign_in(page, server.url, Account(customer.email, "my-new-secret-9", customer.name, "student"))


def test_a_new_accounts_verification_link_confirms_the_email(start_server, make_shop, open_page, smtp):
    server = start_server(smtp_url=smtp.url)
    customer = make_shop(server).customer()
    page = open_page(PHONE)
    page.goto(_link(smtp, customer.email, VERIFY, server.url))
    expect(page.get_by_role("heading", name="Email verified")).to_be_visible()
    page.reload()  # the link works once
    expect(page.get_by_role("heading", name="This link did not work")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("invalid, used or expired")
