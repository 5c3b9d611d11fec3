"""Password reset and email verification by real email (issue 24): the server sends through a
real SMTP server in its own process (aiosmtpd writing a maildir), and the tests follow the link
from the mail they received."""

from __future__ import annotations

import email
import mailbox
import re
import subprocess
import sys
from email.message import Message
from pathlib import Path

import pytest
import pytest_asyncio

from server.embedded_mongo import free_loopback_port
from tests.support import PASSWORD, until, until_sync

NEW_PASSWORD = "a-new-pass-phrase-1"
SAME_ANSWER = {"success": True, "message": "If an account exists for that email, a link to reset its password "
                                             "is on its way.", "data": None}


class SmtpReceiver:
    """aiosmtpd's own server and Mailbox handler: every accepted mail lands in a maildir."""

    def __init__(self, root: Path) -> None:
        self.port = free_loopback_port()
        root.mkdir(parents=True, exist_ok=True)
        self.maildir = root / "maildir"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
             "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        until_sync(self._listening, 15, message="aiosmtpd listening")

    def _listening(self) -> bool:
        import socket
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}?starttls=off"

    def mails_to(self, address: str) -> list[Message]:
        if not self.maildir.exists():
            return []
        return [email.message_from_bytes(bytes(m)) for m in mailbox.Maildir(self.maildir, create=False)
                if m["To"] == address]

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


@pytest.fixture(scope="module")
def smtp(tmp_path_factory):
    receiver = SmtpReceiver(tmp_path_factory.mktemp("smtp"))
    yield receiver
    receiver.stop()


@pytest_asyncio.fixture
async def mail_api(api_factory, clock, smtp):
    return await api_factory(clock=clock, smtp_url=smtp.url, public_url="https://food.campus.test")


def link_in(mail: Message, path: str) -> str:
    text = mail.get_payload(decode=True).decode()
    found = re.search(rf"https://food\.campus\.test/{path}/([A-Za-z0-9_-]+)", text)
    assert found, text
    return found.group(1)


RESET = "Reset your OrderPulse password"
VERIFY = "Confirm your email for OrderPulse"


async def _mail(api, smtp, address: str, subject: str = RESET) -> Message:
    """The one mail of `subject` to `address`, once it has arrived."""
    def arrived() -> list[Message]:
        return [m for m in smtp.mails_to(address) if m["Subject"] == subject]
    await until(arrived, 10, message=f"{subject!r} to {address}")
    (mail,) = arrived()
    return mail


async def test_a_reset_link_arrives_works_once_and_signs_out_every_session(mail_api, smtp, clock):
    api = mail_api
    customer = await api.customer()
    address = customer.user["email"]
    other_device = await api.login(address)  # a second session, of its own token family
    response = await api.post("/api/auth/forgot-password", json={"email": address})
    assert (response.status_code, response.json()) == (200, SAME_ANSWER)
    mail = await _mail(api, smtp, address)
    token = link_in(mail, "reset-password")

    done = await api.post(f"/api/auth/reset-password/{token}", json={"password": NEW_PASSWORD})
    assert (done.status_code, done.json()["message"]) == (
        200, "Your password is changed. Sign in with it; other devices were signed out.")
    again = await api.post(f"/api/auth/reset-password/{token}", json={"password": "yet-another-pass-2"})
    assert (again.status_code, again.json()["message"]) == (
        400, "This password reset link is invalid, used or expired. Ask for a new one.")

    # Every session from before is over: the access token and the refresh token. The access token is
    # refused alike on a route that also serves anonymous callers, never read as no token.
    revoked = await api.get("/api/users/me", customer)
    assert revoked.status_code == 401
    public = await api.get("/api/stores", customer)
    assert (public.status_code, public.text) == (401, revoked.text)
    for session in (customer, other_device):
        refreshed = await api.post("/api/auth/refresh", json={"refreshToken": session.refresh_token})
        assert refreshed.status_code == 401
    clock.advance(1)  # tokens carry whole seconds: one from the reset's own second counts as before it
    old = await api.post("/api/auth/login", json={"email": address, "password": PASSWORD})
    assert old.status_code == 401
    signed_in = await api.login(address, NEW_PASSWORD)
    assert (await api.get("/api/users/me", signed_in)).status_code == 200


async def test_an_unknown_email_gets_the_same_answer_and_no_mail(mail_api, smtp):
    ghost = "nobody-here@campus.test"
    response = await mail_api.post("/api/auth/forgot-password", json={"email": ghost})
    assert (response.status_code, response.json()) == (200, SAME_ANSWER)
    await mail_api.runtime.mailer.drain(10)  # whatever was going to be sent has been
    assert smtp.mails_to(ghost) == []


async def test_a_reset_link_expires_after_its_lifetime(mail_api, smtp, clock):
    customer = await mail_api.customer()
    await mail_api.post("/api/auth/forgot-password", json={"email": customer.user["email"]})
    token = link_in(await _mail(mail_api, smtp, customer.user["email"]), "reset-password")
    clock.advance(30 * 60 + 1)
    late = await mail_api.post(f"/api/auth/reset-password/{token}", json={"password": NEW_PASSWORD})
    assert late.status_code == 400
    assert (await mail_api.post("/api/auth/login", json={"email": customer.user["email"],
                                                          "password": PASSWORD})).status_code == 200


async def test_a_bad_new_password_is_refused_and_the_link_still_works(mail_api, smtp):
    customer = await mail_api.customer()
    await mail_api.post("/api/auth/forgot-password", json={"email": customer.user["email"]})
    token = link_in(await _mail(mail_api, smtp, customer.user["email"]), "reset-password")
    short = await mail_api.post(f"/api/auth/reset-password/{token}", json={"password": "short"})
    assert (short.status_code, short.json()["message"]) == (400, "password must be 8 to 200 characters.")
    assert (await mail_api.post(f"/api/auth/reset-password/{token}",
                                json={"password": NEW_PASSWORD})).status_code == 200


async def test_requests_are_limited_per_address_and_per_account(api_factory, clock, smtp):
    api = await api_factory(clock=clock, smtp_url=smtp.url, public_url="https://food.campus.test",
                            mail_per_address_per_hour=3, mail_per_account_per_hour=1)
    customer = await api.customer()
    address = customer.user["email"]
    for _ in range(3):  # the account's second and third requests get the same answer and no mail
        assert (await api.post("/api/auth/forgot-password", json={"email": address})).json() == SAME_ANSWER
    refused = await api.post("/api/auth/forgot-password", json={"email": "someone-else@campus.test"})
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 3600
    assert refused.json()["message"].startswith("Too many emails asked for from this address.")
    await api.runtime.mailer.drain(10)
    assert [m["Subject"] for m in smtp.mails_to(address)].count(RESET) == 1
    clock.advance(3600)
    assert (await api.post("/api/auth/forgot-password", json={"email": address})).status_code == 200


async def test_sign_up_mails_a_verification_link_that_verifies_the_email_once(mail_api, smtp):
    customer = await mail_api.customer()
    mail = await _mail(mail_api, smtp, customer.user["email"], VERIFY)
    token = link_in(mail, "verify-email")
    verified = await mail_api.post(f"/api/auth/verify-email/{token}")
    assert (verified.status_code, verified.json()["message"]) == (200, "Your email is verified.")
    user = await mail_api.runtime.accounts.current_user(await mail_api.runtime.accounts.authenticate(customer.access_token))
    assert user.email_verified_at is not None
    assert (await mail_api.post(f"/api/auth/verify-email/{token}")).status_code == 400
    resend = await mail_api.post("/api/auth/resend-verification", customer)
    assert resend.json()["message"] == "Your email is already verified."


async def test_without_smtp_mails_are_written_to_the_outbox(api_factory, tmp_path):
    api = await api_factory(smtp_url=None)
    customer = await api.customer()
    await api.runtime.mailer.drain(10)
    files = list((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 1
    mail = email.message_from_bytes(files[0].read_bytes())
    assert mail["To"] == customer.user["email"] and "/verify-email/" in mail.get_payload(decode=True).decode()


async def test_a_stream_ticket_minted_before_a_reset_opens_no_stream(mail_api, smtp):
    from server.domain.errors import Unauthenticated

    customer = await mail_api.customer()
    minted = await mail_api.post("/api/auth/stream-ticket", customer)
    assert minted.status_code == 201, minted.text
    ticket = minted.json()["data"]["ticket"]
    await mail_api.post("/api/auth/forgot-password", json={"email": customer.user["email"]})
    token = link_in(await _mail(mail_api, smtp, customer.user["email"]), "reset-password")
    assert (await mail_api.post(f"/api/auth/reset-password/{token}", json={"password": NEW_PASSWORD})).status_code == 200
    try:
        await mail_api.runtime.accounts.redeem_stream_ticket(ticket)
    except Unauthenticated:
        pass
    else:
        raise AssertionError("a ticket from before the reset still opened a stream")
