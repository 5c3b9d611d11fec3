"""Sending mail: through SMTP when `SMTP_URL` is set, else into `DATA_DIR/outbox` as `.eml` files.

`smtp://[user:password@]host[:port]` speaks STARTTLS when the server offers it (port 587 by
default), `smtps://` TLS from the first byte (465); `?starttls=require` refuses a server that
offers no STARTTLS. Mails go out on tasks of their own, so an answer never waits for (or reveals
by its timing) a mail server.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aiosmtplib

from server.domain.clock import SYSTEM_CLOCK, Clock

log = logging.getLogger("orderpulse.mail")

# Mails being sent at once per process; more are dropped with a warning (the quotas keep this far away).
MAX_SENDING = 100


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    username: str | None
    password: str | None
    use_tls: bool
    start_tls: bool | None  # None: when offered

    @classmethod
    def from_url(cls, url: str) -> SmtpServer:
        """Raises ValueError naming what is wrong (never the password)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("must name a host")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 587)
        except ValueError:
            raise ValueError("has a port that is not a number from 0 to 65535") from None
        starttls = parse_qs(parts.query).get("starttls", ["auto"])[0]
        if starttls not in ("auto", "require", "off"):
            raise ValueError("starttls must be auto, require or off")
        return cls(host=parts.hostname, port=port,
                   username=unquote(parts.username) if parts.username else None,
                   password=unquote(parts.password) if parts.password else None,
                   use_tls=parts.scheme == "smtps",
                   start_tls=None if starttls == "auto" else starttls == "require")


class Mailer:
    def __init__(self, sender: str, smtp: SmtpServer | None, outbox: Path, *, timeout: float = 30,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.sender = sender
        self._smtp = smtp
        self._outbox = outbox
        self._timeout = timeout
        self._clock = clock
        self._sending: set[asyncio.Task[None]] = set()
        # `orderpulse demo` shows each mail's links on its console (nothing else does: they are secrets).
        self.echo: Callable[[str, str], None] | None = None

    def message(self, to: str, subject: str, text: str) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = format_datetime(self._clock.now())
        message["Message-ID"] = make_msgid(domain="orderpulse")
        message.set_content(text)
        return message

    def send_later(self, message: EmailMessage, *, console_line: str | None = None) -> None:
        """Send on a task of its own; failures are logged (without the mail's content)."""
        if len(self._sending) >= MAX_SENDING:
            log.warning("mail to %s dropped: %d mails are being sent already", _masked(message["To"]), MAX_SENDING)
            return
        self.later(self._deliver(message, console_line))

    def later(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` (which may compose and send a mail) on a task this mailer waits for at shutdown."""
        task = asyncio.create_task(self._logged(work), name="mail")
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    @staticmethod
    async def _logged(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except Exception as exc:  # nobody awaits these: one line instead of an unretrieved exception
            log.warning("a mail was not sent: %s", type(exc).__name__)

    async def _deliver(self, message: EmailMessage, console_line: str | None) -> None:
        try:
            if self._smtp is None:
                await asyncio.to_thread(self._write_to_outbox, message)
            else:
                smtp = self._smtp
                await aiosmtplib.send(message, hostname=smtp.host, port=smtp.port, username=smtp.username,
                                      password=smtp.password, use_tls=smtp.use_tls, start_tls=smtp.start_tls,
                                      timeout=self._timeout)
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            log.warning("mail to %s not sent: %s", _masked(message["To"]), type(exc).__name__)
            return
        if self.echo is not None and console_line:
            self.echo(message["To"], console_line)

    def _write_to_outbox(self, message: EmailMessage) -> None:
        self._outbox.mkdir(parents=True, exist_ok=True)
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        path = self._outbox / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        path.write_bytes(bytes(message))
        path.chmod(0o600)

    async def drain(self, seconds: float) -> None:
        """Let mails in flight (and those they start) finish, for up to `seconds` (at shutdown)."""
        deadline = asyncio.get_running_loop().time() + seconds
        while self._sending and (left := deadline - asyncio.get_running_loop().time()) > 0:
            await asyncio.wait(set(self._sending), timeout=left)


def _masked(address: str | None) -> str:
    """`a***@campus.edu`: enough for an operator to tell mails apart, not to read a user list."""
    local, _, domain = (address or "").partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"
