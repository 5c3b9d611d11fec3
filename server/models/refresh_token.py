from __future__ import annotations

from datetime import datetime

from server.models.base import UtcDocument
from pymongo import ASCENDING, IndexModel


class RefreshToken(UtcDocument):
    """One issued refresh token. Rotation marks it used; reusing a used one revokes its family."""

    token_hash: str
    family_id: str
    user_id: str
    expires_at: datetime
    created_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None

    class Settings:
        name = "refresh_tokens"
        keep_nulls = False
        indexes = [
            IndexModel([("token_hash", ASCENDING)], name="token_hash_unique", unique=True),
            IndexModel([("family_id", ASCENDING)], name="family"),
        ]
