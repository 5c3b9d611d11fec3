from __future__ import annotations

from datetime import datetime

from beanie import Document


class Store(Document):
    name: str
    location: str
    upi_id: str
    is_active: bool = True
    created_at: datetime

    class Settings:
        name = "stores"
        keep_nulls = False
