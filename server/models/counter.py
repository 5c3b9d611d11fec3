from __future__ import annotations

from beanie import Document


class Counter(Document):
    """An atomic sequence, e.g. `order-number:20240318`; incremented with `$inc` upserts."""

    id: str  # type: ignore[assignment]
    seq: int = 0

    class Settings:
        name = "counters"
