from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.domain.access import Role
from server.models.base import UtcDocument


class User(UtcDocument):
    name: str
    email: str
    password_hash: str
    role: Role
    register_number: str | None = None
    employee_id: str | None = None
    store_id: str | None = None
    phone_number: str | None = None
    # What a store employee who signed up named as their store, for the admin who assigns one.
    requested_store: str | None = None
    created_at: datetime
    # A disabled account's tokens stop working on every process within a second (README, Hardening).
    is_active: bool = True
    # When it was last disabled; kept after a re-enable so tokens issued before stay refused.
    disabled_at: datetime | None = None
    # When the password was reset by email: every session from before it is over (refresh tokens
    # revoked, access tokens refused as after a disable).
    sessions_revoked_at: datetime | None = None
    # The owner followed the link mailed to this address (absent for accounts made before mail).
    email_verified_at: datetime | None = None

    class Settings:
        name = "users"
        keep_nulls = False
        indexes = [IndexModel([("email", ASCENDING)], name="email_unique", unique=True),
                   IndexModel([("role", ASCENDING)], name="role")]
