from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.models.base import UtcDocument


class AccountToken(UtcDocument):
    """A single-use link sent by email (a password reset or an email verification). Only the
    SHA-256 of its secret is kept, so a copy of the database opens no account."""

    token_hash: str
    purpose: str  # server.services.account_mail.Purpose
    user_id: str
    email: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

    class Settings:
        name = "account_tokens"
        keep_nulls = False
        indexes = [IndexModel([("token_hash", ASCENDING)], name="token_hash_unique", unique=True),
                   IndexModel([("user_id", ASCENDING), ("purpose", ASCENDING)], name="user_purpose")]


class MailQuota(UtcDocument):
    """Mails asked for by one account or one client address in one fixed window: `_id` is
    `kind:subject:window`, so every process counts in the same document."""

    id: str  # type: ignore[assignment]
    requests: int = 0
    window: int  # whole hours since the epoch: compared as numbers on every engine

    class Settings:
        name = "mail_quotas"
        keep_nulls = False
        indexes = [IndexModel([("window", ASCENDING)], name="window")]
