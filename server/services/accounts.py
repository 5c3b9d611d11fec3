"""Accounts: registration, sign-in, rotating refresh tokens, and who is calling."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from bson import ObjectId
from pymongo.errors import DuplicateKeyError

from server.domain import messages
from server.domain.clock import as_utc, utcnow
from server.domain.trust import TrustPolicy, TrustStanding, standing
from server.errors import ApiError
from server.models import Order, RefreshToken, Store, User
from server.models.user import CUSTOMER_ROLES
from server.services.tokens import (
    AccessClaims, TokenService, digest, hash_password, new_refresh_token, verify_password,
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified caller of a request."""

    user_id: str
    role: str
    store_id: str | None
    name: str
    expires_at: float

    @property
    def is_customer(self) -> bool:
        return self.role in CUSTOMER_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    @property
    def is_staff(self) -> bool:
        return self.role == "store_employee"


class AccountService:
    def __init__(self, tokens: TokenService, refresh_lifetime, trust_policy: TrustPolicy,
                 user_cache_seconds: float) -> None:
        self.tokens = tokens
        self._refresh_lifetime = refresh_lifetime
        self._trust_policy = trust_policy
        self._user_cache_seconds = user_cache_seconds
        self._users: dict[str, tuple[float, User]] = {}

    # --- who is calling -------------------------------------------------------------------

    async def authenticate(self, token: str) -> Principal:
        claims = self.tokens.verify_access(token)
        user = await self._cached_user(claims)
        return Principal(user_id=claims.user_id, role=user.role,
                         store_id=user.store_id,
                         name=user.name, expires_at=claims.expires_at)

    def known_principal(self, token: str) -> Principal | None:
        """The caller when that needs no I/O (a valid token, a recently read user); else None."""
        try:
            claims = self.tokens.verify_access(token)
        except ApiError:
            return None
        cached = self._users.get(claims.user_id)
        if cached is None or time.monotonic() - cached[0] >= self._user_cache_seconds:
            return None
        user = cached[1]
        return Principal(user_id=claims.user_id, role=user.role, store_id=user.store_id,
                         name=user.name, expires_at=claims.expires_at)

    async def _cached_user(self, claims: AccessClaims) -> User:
        now = time.monotonic()
        cached = self._users.get(claims.user_id)
        if cached is not None and now - cached[0] < self._user_cache_seconds:
            return cached[1]
        user = await User.get(claims.user_id) if ObjectId.is_valid(claims.user_id) else None
        if user is None:
            self._users.pop(claims.user_id, None)
            raise ApiError(401, messages.USER_NOT_FOUND)
        if len(self._users) > 100_000:
            self._users.clear()
        self._users[claims.user_id] = (now, user)
        return user

    # --- sign-up and sign-in ----------------------------------------------------------------

    async def register_customer(self, *, name: str, email: str, password: str, role: str,
                                register_number: str | None, employee_id: str | None) -> User:
        user = User(name=name, email=email.lower(), password_hash=hash_password(password), role=role,
                    register_number=register_number, employee_id=employee_id, created_at=utcnow())
        return await self._insert_user(user)

    async def create_user(self, *, name: str, email: str, password: str, role: str,
                          store_id: str | None) -> User:
        """Store staff and admins: created by an admin or the command line only."""
        store_oid = None
        if role == "store_employee":
            if not store_id:
                raise ApiError(400, messages.STORE_REQUIRED_FOR_STAFF)
            if not ObjectId.is_valid(store_id) or await Store.get(store_id) is None:
                raise ApiError(404, messages.STORE_NOT_FOUND)
            store_oid = store_id
        user = User(name=name, email=email.lower(), password_hash=hash_password(password), role=role,
                    store_id=store_oid, created_at=utcnow())
        return await self._insert_user(user)

    async def _insert_user(self, user: User) -> User:
        try:
            await user.insert()
        except DuplicateKeyError:
            raise ApiError(409, messages.EMAIL_TAKEN) from None
        return user

    async def login(self, email: str, password: str) -> User:
        user = await User.find_one({"email": email.lower()})
        if not verify_password(user.password_hash if user else None, password) or user is None:
            raise ApiError(401, messages.BAD_CREDENTIALS)
        return user

    async def issue_session(self, user: User, family_id: str | None = None) -> dict[str, str]:
        now = utcnow()
        access = self.tokens.issue_access(str(user.id), user.role, user.store_id, now)
        refresh = new_refresh_token()
        await RefreshToken(token_hash=digest(refresh), family_id=family_id or uuid.uuid4().hex,
                           user_id=str(user.id), expires_at=now + self._refresh_lifetime,
                           created_at=now).insert()
        return {"accessToken": access, "refreshToken": refresh}

    async def refresh(self, refresh_token: str) -> tuple[User, dict[str, str]]:
        """Rotate: a token works once; presenting a used one revokes its whole family."""
        now = utcnow()
        record = await RefreshToken.find_one({"token_hash": digest(refresh_token)})
        if record is None or record.revoked_at is not None or as_utc(record.expires_at) <= now:
            raise ApiError(401, messages.INVALID_REFRESH)
        collection = RefreshToken.get_pymongo_collection()
        claimed = await collection.update_one(
            {"_id": record.id, "used_at": {"$exists": False}, "revoked_at": {"$exists": False}},
            {"$set": {"used_at": now}},
        )
        if claimed.modified_count != 1:
            await self._revoke_family(record.family_id, now)
            raise ApiError(401, messages.REFRESH_REUSED)
        user = await User.get(record.user_id)
        if user is None:
            raise ApiError(401, messages.USER_NOT_FOUND)
        return user, await self.issue_session(user, record.family_id)

    async def logout(self, refresh_token: str) -> None:
        record = await RefreshToken.find_one({"token_hash": digest(refresh_token)})
        if record is not None:
            await self._revoke_family(record.family_id, utcnow())

    async def _revoke_family(self, family_id: str, now: datetime) -> None:
        await RefreshToken.get_pymongo_collection().update_many(
            {"family_id": family_id, "revoked_at": {"$exists": False}}, {"$set": {"revoked_at": now}})

    # --- trust ------------------------------------------------------------------------------

    async def trust_standing(self, user_id: str, now: datetime | None = None) -> TrustStanding:
        """Derived from the orders themselves: a no-show is recorded once, on its order."""
        collection = Order.get_pymongo_collection()
        no_shows = {"user_id": user_id, "no_show_at": {"$exists": True}}
        count = await collection.count_documents(no_shows)
        last = None
        if count:
            latest = await collection.find(no_shows, {"no_show_at": 1}).sort("no_show_at", -1).limit(1).to_list()
            last = as_utc(latest[0]["no_show_at"]) if latest else None
        return standing(count, last, self._trust_policy, now or utcnow())
