"""Pickup-board display links (issue 27): a store-scoped, read-only credential for a TV at the
counter, and the store's board settings."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.models.base import UtcDocument


class Display(UtcDocument):
    """One display link of a store. Only the SHA-256 of its secret is stored: the link is shown
    once, when it is made, and deleting the document revokes it."""

    store_id: str
    secret_hash: str
    label: str | None = None
    created_at: datetime
    created_by: str
    created_by_name: str

    class Settings:
        name = "displays"
        keep_nulls = False
        indexes = [
            IndexModel([("secret_hash", ASCENDING)], name="display_secret_unique", unique=True),
            IndexModel([("store_id", ASCENDING), ("created_at", ASCENDING)], name="store_displays"),
        ]


class BoardSettings(UtcDocument):
    """A store's pickup-board settings, one document per store; absent means all off."""

    store_id: str
    announce: bool = False
    updated_at: datetime

    class Settings:
        name = "board_settings"
        keep_nulls = False
        indexes = [IndexModel([("store_id", ASCENDING)], name="board_store_unique", unique=True)]
