from __future__ import annotations

from datetime import datetime

from server.models.base import UtcDocument
from pymongo import ASCENDING, IndexModel


class ClientApp(UtcDocument):
    """A registered partner application of the `/v1` API (PARTNER.md)."""

    client_id: str
    name: str
    is_active: bool = True
    created_at: datetime
    revoked_at: datetime | None = None

    class Settings:
        name = "client_apps"
        keep_nulls = False
        indexes = [IndexModel([("client_id", ASCENDING)], name="client_id_unique", unique=True)]
