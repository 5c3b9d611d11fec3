from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.models.base import UtcDocument


class Store(UtcDocument):
    name: str
    location: str
    # Shown under the store's name on the customer pages; optional.
    description: str | None = None
    upi_id: str
    is_active: bool = True
    # The kitchen's pace (issue 12): minutes added to every ready-time estimate ("+10"), and
    # new orders refused while paused; orders already placed go on.
    delay_minutes: float = 0.0
    is_paused: bool = False
    # Order caps (issue 27): at most this many items (by their cap weight) per 15-minute slot;
    # absent: no cap.
    items_per_slot: int | None = None
    # Closing time for payments (issue 22): from then on no new orders, and every order unpaid when
    # it was set must be paid by then (server/services/store_closing.py); absent: open.
    closes_at: datetime | None = None
    created_at: datetime

    class Settings:
        name = "stores"
        keep_nulls = False
        indexes = [IndexModel([("is_active", ASCENDING), ("name", ASCENDING)], name="active_by_name")]
