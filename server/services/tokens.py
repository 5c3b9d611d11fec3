"""Signed tokens: access JWTs, checkout-session JWTs, opaque refresh tokens, password hashes."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
import sys
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.errors import Invalid, Unauthenticated, Unavailable
from server.domain.passwords import PasswordCost

T = TypeVar("T")

def _lower_thread_priority() -> None:
    """Run this hashing thread (and the lane threads argon2 starts from it) at nice 10."""
    # Linux keeps the nice value per thread and new threads inherit it, so under a login flood the
    # event loop's thread still wins the CPU; elsewhere the call would address a process, so skip.
    if sys.platform == "linux":
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
        except OSError:
            pass


class HashingThreads:
    """argon2 off the event loop, on a few low-priority threads (argon2 releases the GIL).

    The threads bound the CPU a flood of sign-ins can take; past `max_waiting` jobs in flight a
    new one is refused (Unavailable) at once rather than queued behind a wait no client would sit out.
    """

    def __init__(self, threads: int, max_waiting: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="password-hash",
                                        initializer=_lower_thread_priority)
        self._max_waiting = max_waiting
        self._in_flight = 0

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        if self._in_flight >= self._max_waiting:
            raise Unavailable(messages.SERVER_BUSY.format(seconds=1), retry_after=1)
        self._in_flight += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, work, *args)
        finally:
            self._in_flight -= 1


# One pool per process, shared by every app in it: the CPU it bounds is the process's.
# 64 jobs on two threads is a few seconds' wait at ~0.1 s of CPU per argon2 check.
SHARED_HASHING = HashingThreads(threads=2, max_waiting=64)


class Passwords:
    """Password hashes at one argon2id cost (PASSWORD_HASH_* settings), checked off the event loop.

    A hash made at another cost still verifies; `needs_rehash` says it should be made again at
    this one, which sign-in does, so raising the cost upgrades each account at its next sign-in.
    """

    def __init__(self, cost: PasswordCost = PasswordCost(), hashing: HashingThreads = SHARED_HASHING) -> None:
        self.cost = cost
        self._hasher = PasswordHasher(time_cost=cost.time_cost, memory_cost=cost.memory_kib,
                                      parallelism=cost.parallelism)
        self._hashing = hashing
        self._dummy_hash: str | None = None

    def _dummy(self) -> str:
        """A hash to verify against when no account matches, so an unknown email costs the same
        time; made on first use, not at start-up (it is a full argon2 hash)."""
        if self._dummy_hash is None:
            self._dummy_hash = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash or self._dummy(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    async def hash_async(self, password: str) -> str:
        """`hash` on the hashing threads, off the event loop."""
        return await self._hashing.run(self.hash, password)

    async def verify_async(self, password_hash: str | None, password: str) -> bool:
        """`verify` on the hashing threads; an unknown user (None) costs as much as a wrong password."""
        return await self._hashing.run(self.verify, password_hash, password)


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def minted_before_disable(minted_at: datetime | str, disabled_at: datetime | None) -> bool:
    """A stream ticket minted before its account was last disabled stays dead after a re-enable,
    as the access tokens of then do. Both times are stored to the millisecond or finer, so a ticket
    of the disable's own instant counts as before (the safe side)."""
    return disabled_at is not None and as_utc(minted_at) <= as_utc(disabled_at)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    role: str
    store_id: str | None
    expires_at: float  # epoch seconds
    token_id: str
    issued_at: float = 0.0  # epoch seconds, whole


class TokenService:
    """Issues and verifies JWTs. Verifying a token seen before costs a dictionary lookup."""

    ACCESS = "access"
    CHECKOUT = "checkout"

    def __init__(self, secret: str, algorithm: str, access_lifetime: timedelta,
                 cache_size: int = 50_000, clock: Clock = SYSTEM_CLOCK) -> None:
        self._secret = secret
        self._clock = clock
        self._algorithm = algorithm
        self._access_lifetime = access_lifetime
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()
        self._cache_size = cache_size

    def issue_access(self, user_id: str, role: str, store_id: str | None, now: datetime,
                     token_id: str | None = None) -> str:
        """An access token; with the same `token_id`, `now` and claims, the very same token."""
        claims: dict[str, Any] = {
            "sub": user_id, "role": role, "typ": self.ACCESS, "jti": token_id or uuid.uuid4().hex,
            "iat": int(now.timestamp()), "exp": now + self._access_lifetime,
        }
        if store_id:
            claims["storeId"] = store_id
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify_access(self, token: str, now: float | None = None) -> AccessClaims:
        """Raise Unauthenticated for a bad or expired token; `now` (epoch seconds) spares a clock read."""
        claims = self._verified.get(token)
        if claims is not None:
            if claims.expires_at <= (self._clock.now().timestamp() if now is None else now):
                raise Unauthenticated(messages.TOKEN_EXPIRED)
            return claims
        payload = self._decode(token, self.ACCESS)
        claims = AccessClaims(
            user_id=payload["sub"], role=payload["role"], store_id=payload.get("storeId"),
            expires_at=float(payload["exp"]), token_id=payload["jti"], issued_at=float(payload["iat"]),
        )
        self._verified[token] = claims
        if len(self._verified) > self._cache_size:
            self._verified.popitem(last=False)
        return claims

    def successor(self, refresh_token: str) -> tuple[str, str]:
        """The refresh token (and the access token's id) a rotation of `refresh_token` issues:
        derived from it with the signing secret, so a retry of that rotation within the reuse
        interval re-derives the same pair and no token is kept anywhere but its digest."""
        def derive(label: bytes) -> bytes:
            return hmac.new(self._secret.encode(), label + b"\0" + refresh_token.encode(), hashlib.sha256).digest()

        refresh = base64.urlsafe_b64encode(derive(b"refresh-successor")).rstrip(b"=").decode()
        return refresh, derive(b"access-successor-id")[:16].hex()

    def issue_checkout(self, claims: dict[str, Any], now: datetime, lifetime: timedelta) -> str:
        body = {**claims, "typ": self.CHECKOUT, "iat": int(now.timestamp()), "exp": now + lifetime}
        return jwt.encode(body, self._secret, algorithm=self._algorithm)

    def verify_checkout(self, token: str) -> dict[str, Any]:
        try:
            return self._decode(token, self.CHECKOUT)
        except Unauthenticated:
            raise Invalid(messages.CHECKOUT_INVALID) from None

    def _decode(self, token: str, token_type: str) -> dict[str, Any]:
        try:
            # The times are checked below against this service's clock; PyJWT would use the system's.
            payload = jwt.decode(
                token, self._secret, algorithms=[self._algorithm],
                options={"require": ["exp", "iat", "sub", "jti"], "verify_exp": False, "verify_iat": False},
            )
            issued_at, expires_at = int(payload["iat"]), int(payload["exp"])
        except (jwt.PyJWTError, TypeError, ValueError):
            raise Unauthenticated(messages.INVALID_TOKEN) from None
        now = self._clock.now().timestamp()
        if issued_at > now:
            raise Unauthenticated(messages.INVALID_TOKEN)
        if expires_at <= now:
            raise Unauthenticated(messages.TOKEN_EXPIRED)
        if payload.get("typ") != token_type or not isinstance(payload.get("sub"), str):
            raise Unauthenticated(messages.INVALID_TOKEN)
        if token_type == self.ACCESS and not isinstance(payload.get("role"), str):
            raise Unauthenticated(messages.INVALID_TOKEN)
        return payload
