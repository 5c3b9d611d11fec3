from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.models.base import UtcDocument


class LoginFailureWindow(UtcDocument):
    """Failed sign-ins of one account or client address in one fixed time window.

    The id is `account:<digest>:<window>` or `address:<digest>:<window>`, counted with atomic `$inc`
    upserts; a new window is a new id, so nothing has to reset a count. Past windows are deleted
    by `expires_at` (nx-27017 has no TTL reaper, see README).
    """

    id: str  # type: ignore[assignment]
    failures: int = 0
    expires_at: datetime

    class Settings:
        name = "login_failure_windows"
        indexes = [IndexModel([("expires_at", ASCENDING)], name="expires_at")]
