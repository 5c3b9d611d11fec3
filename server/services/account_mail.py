"""Accounts looked after by email: password reset and email verification.

A link carries a random 256-bit secret; only its SHA-256 is stored, with its purpose, account and
expiry (`ACCOUNT_LINK_MINUTES`, 30). Using it is a compare-and-set on `used_at`, so it works once
however many tabs submit it. Asking for a reset answers the same whether or not the address has an
account, and the mail goes out on a task of its own, so neither the answer nor its timing tells.
Requests are counted per client address (past the limit: RateLimited) and per account (past it: the
same answer, no mail), in MongoDB, so every process counts together.
"""

from __future__ import annotations

import enum
import logging
import secrets
from datetime import timedelta

from bson import ObjectId
from pymongo import ReturnDocument

from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.errors import Invalid, RateLimited
from server.models import AccountToken, MailQuota, RefreshToken, User
from server.services.accounts import AccountService
from server.services.login_throttle import address_subject
from server.services.mail import Mailer
from server.services.outage import upserted
from server.services.tokens import digest

log = logging.getLogger("orderpulse.accounts")

QUOTA_WINDOW_SECONDS = 3600


class Purpose(enum.StrEnum):
    PASSWORD_RESET = "password_reset"
    EMAIL_VERIFICATION = "email_verification"


class AccountMail:
    def __init__(self, accounts: AccountService, mailer: Mailer, *, public_url: str, link_lifetime: timedelta,
                 per_account_per_hour: int, per_address_per_hour: int, clock: Clock = SYSTEM_CLOCK) -> None:
        self._accounts = accounts
        self._mailer = mailer
        self._public_url = public_url.rstrip("/")
        self._link_lifetime = link_lifetime
        self._per_account = per_account_per_hour
        self._per_address = per_address_per_hour
        self._clock = clock

    # --- password reset ------------------------------------------------------------------------

    async def request_password_reset(self, email: str, client_host: str) -> None:
        """Mail a reset link to `email` if it is an active account's; RateLimited past the address's quota.
        Whether it is one is looked up after the answer, so the answer's timing does not tell."""
        await self._count_address(client_host)
        self._mailer.later(self._mail_reset_link(email))

    async def _mail_reset_link(self, email: str) -> None:
        user = await User.find_one({"email": email.lower()})
        if user is None or not user.is_active:
            return
        if not await self._within_account_quota(user, Purpose.PASSWORD_RESET):
            return
        link = await self._new_link(user, Purpose.PASSWORD_RESET, "reset-password")
        minutes = round(self._link_lifetime.total_seconds() / 60)
        self._mailer.send_later(self._mailer.message(
            user.email, "Reset your OrderPulse password",
            f"Hello {user.name},\n\nSomeone (we hope you) asked to reset the password of your OrderPulse account. "
            f"Open this link within {minutes} minutes to choose a new one:\n\n{link}\n\n"
            "The link works once. Every device signed in to your account will be signed out.\n"
            "If you did not ask, ignore this mail: your password stays as it is.\n"), console_line=link)

    async def reset_password(self, token: str, password: str) -> None:
        """Set a new password with a reset link; every session of the account ends. Invalid when the
        link is unknown, used or expired."""
        record = await self._use(token, Purpose.PASSWORD_RESET, messages.RESET_LINK_INVALID)
        password_hash = await self._accounts.passwords.hash_async(password)
        now = self._clock.now()
        result = await User.get_pymongo_collection().update_one(
            {"_id": ObjectId(record.user_id), "is_active": True},
            # Following the link proved the mailbox, so the address counts as verified too.
            {"$set": {"password_hash": password_hash, "sessions_revoked_at": now, "email_verified_at": now}})
        if not result.matched_count:  # disabled or removed since the link was sent
            raise Invalid(messages.RESET_LINK_INVALID)
        await RefreshToken.get_pymongo_collection().update_many(
            {"user_id": record.user_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}})
        # The account's other reset links die with this one.
        await AccountToken.get_pymongo_collection().update_many(
            {"user_id": record.user_id, "purpose": Purpose.PASSWORD_RESET.value, "used_at": {"$exists": False}},
            {"$set": {"used_at": now}})
        await self._accounts.tell_processes(record.user_id, active=True)

    # --- email verification --------------------------------------------------------------------

    async def send_verification(self, user: User) -> None:
        """Mail a verification link (after sign-up, or when asked again: within the account's quota)."""
        if user.email_verified_at is not None:
            return
        if not await self._within_account_quota(user, Purpose.EMAIL_VERIFICATION):
            return
        link = await self._new_link(user, Purpose.EMAIL_VERIFICATION, "verify-email")
        self._mailer.send_later(self._mailer.message(
            user.email, "Confirm your email for OrderPulse",
            f"Hello {user.name},\n\nConfirm that this is your email address for OrderPulse by opening:\n\n{link}\n\n"
            "If you did not create an account, ignore this mail.\n"), console_line=link)

    async def verify_email(self, token: str) -> None:
        record = await self._use(token, Purpose.EMAIL_VERIFICATION, messages.VERIFY_LINK_INVALID)
        # Only while the account still has the address the link was sent to.
        await User.get_pymongo_collection().update_one(
            {"_id": ObjectId(record.user_id), "email": record.email, "email_verified_at": {"$exists": False}},
            {"$set": {"email_verified_at": self._clock.now()}})
        await self._accounts.tell_processes(record.user_id, active=True)

    # --- links ---------------------------------------------------------------------------------

    async def _new_link(self, user: User, purpose: Purpose, path: str) -> str:
        secret = secrets.token_urlsafe(32)
        now = self._clock.now()
        await AccountToken(token_hash=digest(secret), purpose=purpose.value, user_id=str(user.id), email=user.email,
                           created_at=now, expires_at=now + self._link_lifetime).insert()
        return f"{self._public_url}/{path}/{secret}"

    async def _use(self, token: str, purpose: Purpose, invalid: str) -> AccountToken:
        """Claim the link once; Invalid with `invalid` when it is unknown, used or expired."""
        now = self._clock.now()
        document = await AccountToken.get_pymongo_collection().find_one_and_update(
            {"token_hash": digest(token), "purpose": purpose.value, "used_at": {"$exists": False}},
            {"$set": {"used_at": now}}, return_document=ReturnDocument.BEFORE)
        if document is None:
            raise Invalid(invalid)
        # Typed here: Beanie's Document derives from lazy_model's untyped LazyModel, so mypy reads
        # pydantic's methods on it as Any.
        record: AccountToken = AccountToken.model_validate(document)
        if as_utc(record.expires_at) <= now:
            raise Invalid(invalid)
        return record

    # --- quotas ----------------------------------------------------------------------------------

    async def _count(self, kind: str, subject: str) -> tuple[int, int]:
        """This window's requests of `subject` including this one, and the seconds the window has left."""
        now = int(self._clock.now().timestamp())
        window = now // QUOTA_WINDOW_SECONDS
        collection = MailQuota.get_pymongo_collection()
        document = upserted(await collection.find_one_and_update(
            {"_id": f"{kind}:{subject}:{window}"}, {"$inc": {"requests": 1}, "$setOnInsert": {"window": window}},
            upsert=True, return_document=ReturnDocument.AFTER))
        if document["requests"] == 1:  # a new window: the ones before the last are of no use any more
            await collection.delete_many({"window": {"$lt": window - 1}})
        return int(document["requests"]), (window + 1) * QUOTA_WINDOW_SECONDS - now

    async def _count_address(self, client_host: str) -> None:
        count, seconds = await self._count("address", address_subject(client_host))
        if count > self._per_address:
            raise RateLimited(messages.MAIL_REQUESTS_THROTTLED.format(minutes=max(1, -(-seconds // 60))),
                              retry_after=seconds)

    async def _within_account_quota(self, user: User, purpose: Purpose) -> bool:
        """Each purpose has its own quota: a sign-up's verification mail leaves the resets whole."""
        return (await self._count(purpose.value, str(user.id)))[0] <= self._per_account
