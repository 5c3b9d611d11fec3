from __future__ import annotations

from datetime import datetime
from typing import Literal

from server.models.base import UtcDocument
from pymongo import ASCENDING, IndexModel

Role = Literal["student", "faculty", "store_employee", "admin"]
CUSTOMER_ROLES = frozenset({"student", "faculty"})
ROLES = ("student", "faculty", "store_employee", "admin")


class User(UtcDocument):
    name: str
    email: str
    password_hash: str
    role: Role
    register_number: str | None = None
    employee_id: str | None = None
    store_id: str | None = None
    created_at: datetime
    # A disabled account's tokens stop working on every process within a second (README, Hardening).
    is_active: bool = True
    # When it was last disabled; kept after a re-enable so tokens issued before stay refused.
    disabled_at: datetime | None = None

    class Settings:
        name = "users"
        keep_nulls = False
        indexes = [IndexModel([("email", ASCENDING)], name="email_unique", unique=True),
                   IndexModel([("role", ASCENDING)], name="role")]

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name
