"""Accounts: registration, sign-in, rotating refresh tokens, and who is calling."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson

from beanie import SortDirection
from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from server.domain import messages
from server.domain.access import ADMIN_GIVEN_ROLES, CUSTOMER_ROLES, Principal, Role
from server.domain.clock import SYSTEM_CLOCK, Clock, as_utc
from server.domain.trust import TrustPolicy, TrustStanding, standing
from server.domain.errors import Conflict, Forbidden, Invalid, NotFound, Unauthenticated, Unavailable
from server.models import Order, RefreshToken, Store, User
from server.models.stream_ticket import StreamTicket
from server.services import order_store
from server.services.bus import MessageBus
from server.services.outage import RawCollection, refuse_unwritten
from server.services.tokens import (
    AccessClaims, Passwords, TokenService, digest, minted_before_disable, new_refresh_token,
)


log = logging.getLogger("orderpulse.accounts")

# Every process listens here: an account was disabled, re-enabled or removed.
ACCOUNTS_CHANNEL = "accounts"
STREAM_TICKET_LIFETIME = timedelta(seconds=30)
AccountListener = Callable[[str, bool], None]
# The claim every change that removes an active admin takes first (see `_remove_admin`).
ADMIN_SET_CLAIMS = "locks"
ADMIN_SET_CLAIM = "admin-set"
ADMIN_SET_LEASE_SECONDS = 10.0
ADMIN_SET_WAIT_SECONDS = 5.0
ADMIN_SET_POLL_SECONDS = 0.01


def _issued_before_disable(claims: AccessClaims, user: User) -> bool:
    """A token from before the account was last disabled (or its sessions ended by a password
    reset) stays dead after a re-enable. Tokens carry whole seconds, so one from that second counts
    as before (the safe side)."""
    return any(when is not None and claims.issued_at <= as_utc(when).timestamp()
               for when in (user.disabled_at, user.sessions_revoked_at))


class AccountService:
    def __init__(self, tokens: TokenService, refresh_lifetime: timedelta, trust_policy: TrustPolicy,
                 user_cache_seconds: float, clock: Clock = SYSTEM_CLOCK,
                 passwords: Passwords | None = None, refresh_reuse_seconds: float = 10) -> None:
        self.tokens = tokens
        self._refresh_reuse = timedelta(seconds=refresh_reuse_seconds)
        self.passwords = passwords or Passwords()
        self._clock = clock
        self._refresh_lifetime = refresh_lifetime
        self._trust_policy = trust_policy
        # The user cache runs on real monotonic time, not `clock`: it bounds how long this process
        # misses a change made by another one, and those happen in real time.
        self._user_cache_seconds = user_cache_seconds
        self._users: dict[str, tuple[float, User]] = {}
        # The caller each recently verified access token names, with the cached account entry it
        # was built from: valid while that very entry is (an account change replaces or drops it).
        self._principals: dict[str, tuple[tuple[float, User], Principal]] = {}
        # When each account last changed (monotonic), so a read in flight meanwhile is redone.
        self._changed_at: dict[str, float] = {}
        self._account_listeners: list[AccountListener] = []
        self._bus: MessageBus | None = None
        self._loading: dict[str, asyncio.Future[User | None]] = {}

    # --- account changes, across processes ---------------------------------------------------

    def use_bus(self, bus: MessageBus) -> None:
        """Account changes go out through `bus`; a lost bus connection forgets every user."""
        self._bus = bus
        bus.on_connection_change(lambda connected: self._users.clear())

    async def start(self) -> None:
        if self._bus is not None:
            await self._bus.subscribe(ACCOUNTS_CHANNEL, self._on_account_message)

    def on_account_changed(self, listener: AccountListener) -> None:
        """Call `listener(user_id, active)` when any process changes an account."""
        self._account_listeners.append(listener)

    def _on_account_message(self, channel: str, payload: bytes) -> None:
        try:
            change = orjson.loads(payload)
            user_id, active = str(change["userId"]), bool(change["active"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("ignored a malformed account change")
            return
        self.account_changed(user_id, active)

    def account_changed(self, user_id: str, active: bool) -> None:
        """Forget the cached user and tell the listeners (the hub closes a disabled user's sockets)."""
        self._users.pop(user_id, None)
        self._changed_at[user_id] = time.monotonic()
        if len(self._changed_at) > 10_000:
            horizon = time.monotonic() - 60
            self._changed_at = {k: v for k, v in self._changed_at.items() if v > horizon}
        for listener in tuple(self._account_listeners):
            try:
                listener(user_id, active)
            except Exception:
                log.exception("account listener failed")

    async def set_active(self, user_id: str, active: bool) -> User:
        """Disable or re-enable an account. Disabling revokes its refresh tokens; either way every
        process forgets the cached user at once (and within the cache lifetime if a message is lost).
        The last active admin cannot be disabled (Conflict), however many admins try at once."""
        user = await User.get(user_id) if ObjectId.is_valid(user_id) else None
        if user is None:
            raise NotFound(messages.ADMIN_USER_NOT_FOUND)
        now = self._clock.now()
        # `disabled_at` stays after a re-enable: tokens issued before it never work again.
        changes: dict[str, Any] = {"is_active": active} if active else {"is_active": False, "disabled_at": now}
        if not active and user.role == Role.ADMIN and user.is_active:
            await self._remove_admin(user, {"$set": changes}, undo={"$set": {"is_active": True}})
        else:
            await User.get_pymongo_collection().update_one({"_id": user.id}, {"$set": changes})
        if not active:
            await RefreshToken.get_pymongo_collection().update_many(
                {"user_id": user_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}})
        await self.tell_processes(user_id, active)
        user.is_active = active
        if not active:
            user.disabled_at = now
        return user

    async def set_role(self, user_id: str, role: Role, store_id: str | None) -> User:
        """Make a member of staff an admin, or a store employee of `store_id`. Every process forgets
        the cached user at once and ends its streams (as on a disable), so they reopen with the new
        role's rights. The last active admin cannot be demoted (Conflict)."""
        user = await User.get(user_id) if ObjectId.is_valid(user_id) else None
        if user is None:
            raise NotFound(messages.ADMIN_USER_NOT_FOUND)
        if user.role not in ADMIN_GIVEN_ROLES:
            raise Invalid(messages.ROLE_CHANGE_NOT_STAFF)
        if role == Role.STORE_EMPLOYEE:
            if not store_id:
                raise Invalid(messages.STORE_REQUIRED_FOR_STAFF)
            if not ObjectId.is_valid(store_id) or await Store.get(store_id) is None:
                raise NotFound(messages.STORE_NOT_FOUND)
            change: dict[str, Any] = {"$set": {"role": role.value, "store_id": store_id}}
        else:
            store_id = None
            change = {"$set": {"role": role.value}, "$unset": {"store_id": ""}}
        if role != Role.ADMIN and user.role == Role.ADMIN and user.is_active:
            undo = {"$set": {"role": Role.ADMIN.value}, "$unset": {"store_id": ""}}
            await self._remove_admin(user, change, undo)
        else:
            await User.get_pymongo_collection().update_one({"_id": user.id}, change)
        await self.tell_processes(user_id, False)
        user.role, user.store_id = role, store_id
        return user

    async def tell_processes(self, user_id: str, active: bool) -> None:
        """This process and, through the broker, every other forgets the cached user; `active`
        False also ends the account's streams."""
        self.account_changed(user_id, active)
        if self._bus is not None:
            try:
                await self._bus.publish([ACCOUNTS_CHANNEL], orjson.dumps({"userId": user_id, "active": active}))
            except Exception:  # the cache lifetime still bounds how long other processes trust it
                log.warning("could not publish the change of account %s", user_id)

    # --- the last admin ---------------------------------------------------------------------
    #
    # At least one active admin always remains. MongoDB offers no multi-document transaction on
    # every deployment (the embedded engine has none), so each change that takes an admin out of
    # the active admins (a disable, a demotion) first claims one lock document (`locks`,
    # `_id: "admin-set"`) by inserting it: the unique `_id` lets exactly one claimant in at a time,
    # on every process. Holding it, the change counts the other active admins, applies itself only
    # if one remains, and deletes its claim. Changes that add an admin (create, re-enable, promote)
    # take no claim: racing with a removal they can only make it count too few admins, never too
    # many. A claim left by a crashed process is taken over once its lease has passed; a change
    # that outlived its own lease counts again afterwards and undoes itself if no active admin is
    # left.

    async def _remove_admin(self, user: User, change: dict[str, Any], undo: dict[str, Any]) -> None:
        """Apply `change` (which takes `user` out of the active admins) unless no other one remains."""
        users = User.get_pymongo_collection()
        token = await self._claim_admin_set()
        try:
            if await self._active_admins(other_than=user.id) == 0:
                raise Conflict(messages.LAST_ADMIN)
            await users.update_one({"_id": user.id}, change)
        finally:
            released = await self._release_admin_set(token)
        if not released and await self._active_admins(other_than=None) == 0:
            await users.update_one({"_id": user.id}, undo)
            log.warning("undid a change to admin %s that outlived its claim and left no active admin", user.id)
            raise Conflict(messages.LAST_ADMIN)

    @staticmethod
    async def _active_admins(other_than: Any) -> int:
        # Admins are few; read them all and filter here, not with an `_id: {$ne}` count.
        admins = await User.get_pymongo_collection().find(
            {"role": Role.ADMIN.value, "is_active": {"$ne": False}}, {"_id": 1}).to_list()
        return sum(1 for admin in admins if admin["_id"] != other_than)

    def _admin_set_claims(self) -> RawCollection:
        return User.get_pymongo_collection().database.get_collection(ADMIN_SET_CLAIMS)

    async def _claim_admin_set(self) -> str:
        """Wait (up to `ADMIN_SET_WAIT_SECONDS`) for the admin-set claim; Unavailable if it stays taken."""
        claims = self._admin_set_claims()
        token = uuid.uuid4().hex
        deadline = time.monotonic() + ADMIN_SET_WAIT_SECONDS
        while True:
            now = self._clock.now().timestamp()
            claim = {"holder": token, "expires": now + ADMIN_SET_LEASE_SECONDS}
            try:
                await claims.insert_one({"_id": ADMIN_SET_CLAIM, **claim})
                return token
            except DuplicateKeyError:
                pass
            # A claim whose lease has passed was left by a process that died holding it.
            if await claims.find_one_and_update({"_id": ADMIN_SET_CLAIM, "expires": {"$lt": now}}, {"$set": claim}):
                log.warning("took over an expired claim on the admin set")
                return token
            if time.monotonic() >= deadline:
                raise Unavailable(messages.SERVER_BUSY.format(seconds=1), retry_after=1)
            await asyncio.sleep(ADMIN_SET_POLL_SECONDS)

    async def _release_admin_set(self, token: str) -> bool:
        """False when the claim was no longer ours (its lease passed and another change took it)."""
        result = await self._admin_set_claims().delete_one({"_id": ADMIN_SET_CLAIM, "holder": token})
        return result.deleted_count == 1

    async def list_users(self, *, page: int, limit: int, role: str | None, search: str | None,
                         roles: tuple[str, ...] = (), awaiting_store: bool = False) -> tuple[list[User], int]:
        """A page of accounts, newest first: of `role` (or any of `roles`), matching `search`;
        `awaiting_store`: only store employees no admin has assigned to a store yet."""
        query: dict[str, Any] = {}
        if awaiting_store:
            query.update(role=Role.STORE_EMPLOYEE.value, store_id=None)
        elif role:
            query["role"] = role
        elif roles:
            query["role"] = {"$in": list(roles)}
        if search:
            pattern = re.escape(search)
            query["$or"] = [{"email": {"$regex": pattern, "$options": "i"}},
                            {"name": {"$regex": pattern, "$options": "i"}}]
        total = await User.find(query).count()
        users = await User.find(query).sort([("_id", SortDirection.DESCENDING)]).skip((page - 1) * limit) \
            .limit(limit).to_list()
        return users, total

    # --- event-stream tickets ---------------------------------------------------------------

    async def issue_stream_ticket(self, principal: Principal) -> tuple[str, int]:
        """A ticket for one event stream, valid for 30 s and once: `?ticket=` instead of `?token=`."""
        ticket = secrets.token_urlsafe(24)
        now = self._clock.now()
        await StreamTicket(ticket_hash=digest(ticket), user_id=principal.user_id,
                           token_expires_at=principal.expires_at, expires_at=now + STREAM_TICKET_LIFETIME,
                           created_at=now).insert()
        return ticket, int(STREAM_TICKET_LIFETIME.total_seconds())

    async def redeem_stream_ticket(self, ticket: str) -> Principal:
        """The caller a ticket was issued to; it works once, and only until it expires."""
        collection = StreamTicket.get_pymongo_collection()
        record = await collection.find_one_and_delete({"ticket_hash": digest(ticket)})
        if record is None:
            await refuse_unwritten(collection, {"ticket_hash": digest(ticket)})
        now = self._clock.now()
        if record is None or as_utc(record["expires_at"]) <= now or record["token_expires_at"] <= now.timestamp():
            raise Unauthenticated(messages.STREAM_TICKET_INVALID)
        user_id = str(record["user_id"])
        user = await self._cached_user(user_id)
        # A password reset ends the ticket's session as a disable does.
        if any(minted_before_disable(record["created_at"], when)
               for when in (user.disabled_at, user.sessions_revoked_at)):
            raise Unauthenticated(messages.STREAM_TICKET_INVALID)
        return Principal(user_id=user_id, role=user.role, store_id=user.store_id, name=user.name,
                         expires_at=record["token_expires_at"])

    # --- who is calling -------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        claims = self.tokens.verify_access(token)
        user = await self._cached_user(claims.user_id)
        if _issued_before_disable(claims, user):
            raise Unauthenticated(messages.USER_NOT_FOUND)
        return Principal(user_id=claims.user_id, role=user.role,
                         store_id=user.store_id,
                         name=user.name, expires_at=claims.expires_at)

    def known_principal(self, token: str, now: float | None = None) -> Principal | None:
        """The caller when that needs no I/O (a valid token, a recently read user); else None.
        `now` (epoch seconds) spares a clock read to a caller that has one."""
        known = self._principals.get(token)
        if known is not None:
            built_from, principal = known
            if (self._users.get(principal.user_id) is built_from
                    and time.monotonic() - built_from[0] < self._user_cache_seconds
                    and principal.expires_at > (self._clock.now().timestamp() if now is None else now)):
                return principal
            del self._principals[token]
        try:
            claims = self.tokens.verify_access(token, now)
        except Unauthenticated:
            return None
        entry = self._users.get(claims.user_id)
        if entry is None or time.monotonic() - entry[0] >= self._user_cache_seconds:
            return None
        user = entry[1]
        if not user.is_active or _issued_before_disable(claims, user):
            return None
        principal = Principal(user_id=claims.user_id, role=user.role, store_id=user.store_id,
                              name=user.name, expires_at=claims.expires_at)
        if len(self._principals) >= 100_000:
            self._principals.clear()
        self._principals[token] = (entry, principal)
        return principal

    async def _cached_user(self, user_id: str) -> User:
        """The caller's account, read at most once per cache lifetime; Unauthenticated once removed or
        disabled."""
        cached = self._users.get(user_id)
        user: User | None
        if cached is not None and time.monotonic() - cached[0] < self._user_cache_seconds:
            user = cached[1]
        else:
            user = await self._read_user(user_id)
        if user is None or not user.is_active:
            raise Unauthenticated(messages.USER_NOT_FOUND)
        return user

    async def _read_user(self, user_id: str) -> User | None:
        """One read per user at a time: callers arriving while it runs share it (when a cache entry
        expires, every in-flight request of that caller would otherwise read the same user)."""
        if not ObjectId.is_valid(user_id):
            return None
        loading = self._loading.get(user_id)
        if loading is None:
            loading = asyncio.ensure_future(self._load_user(user_id))
            self._loading[user_id] = loading
            loading.add_done_callback(lambda done: self._loading.pop(user_id, None)
                                      if self._loading.get(user_id) is done else None)
            # Retrieved here too, so a load whose callers all left is not reported as unhandled.
            loading.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(loading)

    async def _load_user(self, user_id: str) -> User | None:
        for _ in range(3):
            started = time.monotonic()
            user = await User.get(user_id)
            # The account changed while this read was in flight: it may have read the old state.
            if self._changed_at.get(user_id, float("-inf")) < started:
                break
        if user is None:
            self._users.pop(user_id, None)
            return None
        if len(self._users) > 100_000:
            self._users.clear()
        # Stamped with the read's start, so the cache never trusts a state older than its lifetime.
        self._users[user_id] = (started, user)
        return user

    # --- sign-up and sign-in ----------------------------------------------------------------

    async def register(self, *, name: str, email: str, password: str, role: Role, register_number: str | None,
                       employee_id: str | None, phone_number: str | None = None,
                       requested_store: str | None = None) -> User:
        """A student or faculty member, or a store employee who acts for no store (no `store_id`)
        until an admin assigns one (`set_role`); `requested_store` is the store they named."""
        password_hash = await self.passwords.hash_async(password)
        user = User(name=name, email=email.lower(), password_hash=password_hash, role=role,
                    register_number=register_number, employee_id=employee_id, phone_number=phone_number,
                    requested_store=requested_store if role == Role.STORE_EMPLOYEE else None,
                    created_at=self._clock.now())
        return await self._insert_user(user)

    async def update_profile(self, principal: Principal, changes: dict[str, Any]) -> User:
        """The owner's own name, phone number (None removes it) and, for a student, register number.
        Tokens carry none of these; the cached user is forgotten so names read fresh."""
        user = await self.current_user(principal)
        if changes.get("register_number") is not None and user.role != Role.STUDENT:
            raise Invalid(messages.PROFILE_REGISTER_NUMBER_STUDENTS)
        update: dict[str, Any] = {}
        if changes:
            sets = {key: value for key, value in changes.items() if value is not None}
            unsets = {key: "" for key, value in changes.items() if value is None}
            update = {**({"$set": sets} if sets else {}), **({"$unset": unsets} if unsets else {})}
            await User.get_pymongo_collection().update_one({"_id": user.id}, update)
            await self.tell_processes(principal.user_id, True)
        for key, value in changes.items():
            setattr(user, key, value)
        return user

    async def create_user(self, *, name: str, email: str, password: str, role: Role,
                          store_id: str | None) -> User:
        """Store staff and admins: created by an admin or the command line only."""
        store_oid = None
        if role == Role.STORE_EMPLOYEE:
            if not store_id:
                raise Invalid(messages.STORE_REQUIRED_FOR_STAFF)
            if not ObjectId.is_valid(store_id) or await Store.get(store_id) is None:
                raise NotFound(messages.STORE_NOT_FOUND)
            store_oid = store_id
        password_hash = await self.passwords.hash_async(password)
        user = User(name=name, email=email.lower(), password_hash=password_hash, role=role,
                    store_id=store_oid, created_at=self._clock.now())
        return await self._insert_user(user)

    async def _insert_user(self, user: User) -> User:
        try:
            await user.insert()
        except DuplicateKeyError:
            raise Conflict(messages.EMAIL_TAKEN) from None
        return user

    async def login(self, email: str, password: str) -> User:
        user = await User.find_one({"email": email.lower()})
        if not await self.passwords.verify_async(user.password_hash if user else None, password) or user is None:
            raise Unauthenticated(messages.BAD_CREDENTIALS)
        if not user.is_active:
            raise Forbidden(messages.ACCOUNT_DISABLED)
        if self.passwords.needs_rehash(user.password_hash):
            await self._rehash(user, password)
        return user

    async def _rehash(self, user: User, password: str) -> None:
        """Store the password again at the configured cost (it was hashed at another one), only if
        the stored hash is still the one just checked: a password change meanwhile wins."""
        old = user.password_hash
        new = await self.passwords.hash_async(password)
        result = await User.get_pymongo_collection().update_one({"_id": user.id, "password_hash": old},
                                                                {"$set": {"password_hash": new}})
        if result.modified_count:
            user.password_hash = new

    async def issue_session(self, user: User, family_id: str | None = None) -> dict[str, str]:
        now = self._clock.now()
        access = self.tokens.issue_access(str(user.id), user.role, user.store_id, now)
        refresh = new_refresh_token()
        await RefreshToken(token_hash=digest(refresh), family_id=family_id or uuid.uuid4().hex,
                           user_id=str(user.id), expires_at=now + self._refresh_lifetime,
                           created_at=now).insert()
        return {"accessToken": access, "refreshToken": refresh}

    async def refresh(self, refresh_token: str) -> tuple[User, dict[str, str]]:
        """Rotate: a token works once. Presented again within the reuse interval of its rotation
        (two tabs waking together), it answers the pair that rotation issued, re-derived from it
        (`TokenService.successor`: nothing but digests is stored); later, its whole family is revoked."""
        now = self._clock.now()
        # To the millisecond, as MongoDB keeps `used_at`: a retry re-derives the access token from it.
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        record = await RefreshToken.find_one({"token_hash": digest(refresh_token)})
        if record is None or record.revoked_at is not None or as_utc(record.expires_at) <= now:
            raise Unauthenticated(messages.INVALID_REFRESH)
        collection = RefreshToken.get_pymongo_collection()
        claimed = await collection.update_one(
            {"_id": record.id, "used_at": {"$exists": False}, "revoked_at": {"$exists": False}},
            {"$set": {"used_at": now}},
        )
        successor, access_id = self.tokens.successor(refresh_token)
        if claimed.modified_count != 1:
            rotated_at = await self._rotated_within_reuse(record.id, now)
            if rotated_at is None:
                await self._revoke_family(record.family_id, now)
                raise Unauthenticated(messages.REFRESH_REUSED)
            user = await self._active_user(record.user_id)
            access = self.tokens.issue_access(str(user.id), user.role, user.store_id, rotated_at, access_id)
            return user, {"accessToken": access, "refreshToken": successor}
        user = await self._active_user(record.user_id)
        await RefreshToken(token_hash=digest(successor), family_id=record.family_id, user_id=str(user.id),
                           expires_at=now + self._refresh_lifetime, created_at=now).insert()
        access = self.tokens.issue_access(str(user.id), user.role, user.store_id, now, access_id)
        return user, {"accessToken": access, "refreshToken": successor}

    async def _rotated_within_reuse(self, record_id: Any, now: datetime) -> datetime | None:
        """When the token was rotated, if that is within the reuse interval and its family stands."""
        current = await RefreshToken.get_pymongo_collection().find_one({"_id": record_id})
        if current is None or current.get("revoked_at") is not None or current.get("used_at") is None:
            return None
        rotated_at = as_utc(current["used_at"])
        return rotated_at if now - rotated_at <= self._refresh_reuse else None

    @staticmethod
    async def _active_user(user_id: str) -> User:
        user = await User.get(user_id)
        if user is None or not user.is_active:
            raise Unauthenticated(messages.USER_NOT_FOUND)
        return user

    async def logout(self, refresh_token: str) -> None:
        record = await RefreshToken.find_one({"token_hash": digest(refresh_token)})
        if record is not None:
            await self._revoke_family(record.family_id, self._clock.now())

    async def _revoke_family(self, family_id: str, now: datetime) -> None:
        await RefreshToken.get_pymongo_collection().update_many(
            {"family_id": family_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}})

    async def current_user(self, principal: Principal) -> User:
        """The caller's account as stored now (not the cached copy); Unauthenticated once it is gone."""
        user = await User.get(principal.user_id)
        if user is None:
            raise Unauthenticated(messages.USER_NOT_FOUND)
        return user

    # --- trust ------------------------------------------------------------------------------

    async def trust_standing(self, user_id: str, now: datetime | None = None) -> TrustStanding:
        """Derived from the orders themselves: a no-show is recorded once, on its order."""
        count, last = await order_store.no_show_standing(user_id)
        return standing(count, last, self._trust_policy, now or self._clock.now())

    # --- the admin console: customers' no-shows -------------------------------------------------

    async def customer(self, user_id: str) -> User:
        """A student or faculty account; NotFound for anyone else."""
        user = await User.get(user_id) if ObjectId.is_valid(user_id) else None
        if user is None or user.role not in CUSTOMER_ROLES:
            raise NotFound(messages.CUSTOMER_NOT_FOUND)
        return user

    async def no_shows_of(self, user_id: str) -> list[Order]:
        """Every no-show recorded against the customer, the cleared ones too, newest first."""
        return await order_store.no_shows_of(user_id)

    async def clear_no_show(self, order_id: str, admin: Principal, reason: str) -> Order:
        """Take back a wrongly recorded no-show: it stops counting towards the customer's trust, and
        the order keeps when it was recorded, who cleared it, when and why."""
        if not ObjectId.is_valid(order_id):
            raise NotFound(messages.ORDER_NOT_FOUND)
        now = self._clock.now()
        store_id, recorded = await order_store.recorded_no_show(ObjectId(order_id))
        if store_id is None:
            raise NotFound(messages.ORDER_NOT_FOUND)
        if recorded is None:
            raise Conflict(messages.NO_SHOW_NOT_RECORDED)
        # Matches only the no-show just read, so two admins clearing it at once clear it once.
        cleared = await order_store.clear_no_show(store_id, ObjectId(order_id), recorded, {
            "no_show_cleared_at": now, "no_show_cleared_by": admin.user_id, "no_show_cleared_by_name": admin.name,
            "no_show_cleared_reason": reason})
        if not cleared:
            raise Conflict(messages.NO_SHOW_NOT_RECORDED)
        order = await order_store.get(order_id)
        assert order is not None
        log.info("admin %s cleared the no-show of order %s", admin.user_id, order_id)
        return order
