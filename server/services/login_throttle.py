"""Failed sign-ins per account and per client address, counted in MongoDB so every process agrees."""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timezone

from pymongo import ReturnDocument

from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.errors import RateLimited
from server.models import LoginFailureWindow
from server.services.outage import upserted


@dataclass(frozen=True, slots=True)
class LoginAttempt:
    """The counters one sign-in attempt was charged to, so a success can take it back."""

    account_key: str
    address_key: str


def address_subject(host: str) -> str:
    """What one client address is counted as: an IPv6 host by its /64, which one machine usually owns."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class LoginThrottle:
    """Fixed windows of `window_seconds`: past `max_per_account` failures for an email, or
    `max_per_address` from one address, every sign-in is RateLimited until the window ends.

    Each attempt is counted *before* its password is checked (one atomic `$inc` per counter), so
    concurrent attempts cannot slip past the limit and a refused one costs no hashing; a success
    takes its attempt back.
    """

    def __init__(self, max_per_account: int, max_per_address: int, window_seconds: float,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.max_per_account = max_per_account
        self.max_per_address = max_per_address
        self.window_seconds = window_seconds
        self._clock = clock  # wall-clock time: windows are shared by every process
        self._next_prune = 0.0

    async def begin(self, email: str, address: str) -> LoginAttempt:
        """Charge this attempt to both counters; raise RateLimited when either is past its limit."""
        now = self._clock.now().timestamp()
        window = math.floor(now / self.window_seconds)
        ends_at = (window + 1) * self.window_seconds
        attempt = LoginAttempt(self._key("account", email.strip().lower(), window),
                               self._key("address", address_subject(address), window))
        expires_at = datetime.fromtimestamp(ends_at, timezone.utc)
        account_failures, address_failures = await asyncio.gather(
            self._charge(attempt.account_key, expires_at), self._charge(attempt.address_key, expires_at))
        if account_failures > self.max_per_account or address_failures > self.max_per_address:
            wait = max(1, math.ceil(ends_at - now))
            raise RateLimited(messages.LOGIN_THROTTLED.format(seconds=wait), retry_after=wait)
        if now >= self._next_prune:
            await self._prune(now)
        return attempt

    async def succeeded(self, attempt: LoginAttempt) -> None:
        """A success is no failure: the account starts afresh, the address gets this attempt back."""
        collection = LoginFailureWindow.get_pymongo_collection()
        await asyncio.gather(
            collection.delete_one({"_id": attempt.account_key}),
            collection.update_one({"_id": attempt.address_key}, {"$inc": {"failures": -1}}))

    @staticmethod
    def _key(kind: str, subject: str, window: int) -> str:
        # A digest keeps ids short and keeps the typed emails out of the collection.
        digest = hashlib.sha256(f"{kind}:{subject}".encode()).hexdigest()[:32]
        return f"{kind}:{digest}:{window}"

    @staticmethod
    async def _charge(key: str, expires_at: datetime) -> int:
        # `$set`, not `$setOnInsert` (which nx-27017 ignores): a key's window, so its expiry, never changes.
        counted = upserted(await LoginFailureWindow.get_pymongo_collection().find_one_and_update(
            {"_id": key}, {"$inc": {"failures": 1}, "$set": {"expires_at": expires_at}},
            upsert=True, projection={"failures": 1}, return_document=ReturnDocument.AFTER))
        return int(counted["failures"])

    async def _prune(self, now: float) -> None:
        """Delete ended windows, at most once a window (or a minute) per process."""
        self._next_prune = now + max(self.window_seconds, 60)
        await LoginFailureWindow.get_pymongo_collection().delete_many(
            {"expires_at": {"$lt": datetime.fromtimestamp(now, timezone.utc)}})
