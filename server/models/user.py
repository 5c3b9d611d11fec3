from __future__ import annotations

from datetime import datetime
from typing import Literal

from server.models.base import UtcDocument
from pymongo import ASCENDING, IndexModel

Role = Literal["student", "faculty", "store_employee", "admin"]
CUSTOMER_ROLES = frozenset({"student", "faculty"})


class User(UtcDocument):
    name: str
    email: str
    password_hash: str
    role: Role
    register_number: str | None = None
    employee_id: str | None = None
    store_id: str | None = None
    created_at: datetime

    class Settings:
        name = "users"
        keep_nulls = False
        indexes = [IndexModel([("email", ASCENDING)], name="email_unique", unique=True)]

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.split() else self.name
