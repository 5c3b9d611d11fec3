from __future__ import annotations

from datetime import datetime

from server.models.base import UtcDocument
from pymongo import ASCENDING, IndexModel


class MenuItem(UtcDocument):
    store_id: str  # references are hex strings: see README, "Embedded MongoDB"
    name: str
    price_paise: int
    category: str | None = None
    is_available: bool = True
    # How many items of a store's per-slot cap one of these counts for (a dish that takes longer).
    cap_weight: int = 1
    created_at: datetime
    updated_at: datetime

    class Settings:
        name = "menu_items"
        keep_nulls = False
        indexes = [IndexModel([("store_id", ASCENDING), ("name", ASCENDING)], name="store_menu")]
