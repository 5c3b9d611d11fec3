"""Order caps per 15-minute slot (issue 27): the slot arithmetic, with no database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

SLOT = timedelta(minutes=15)
# A full slot defers new checkouts to the next one with room, up to this many slots ahead (the
# current one included); past that a checkout is refused, as no one orders lunch for tomorrow.
LOOKAHEAD_SLOTS = 4
MAX_ITEMS_PER_SLOT = 1000
MAX_CAP_WEIGHT = 20
_EPOCH = datetime(2000, 1, 1, tzinfo=timezone.utc)


def slot_start(moment: datetime) -> datetime:
    """The start of the slot `moment` falls in (slots start on the quarter hour, UTC; every
    time zone in use is a whole number of quarter hours from UTC, so local quarters too)."""
    return _EPOCH + SLOT * ((moment - _EPOCH) // SLOT)


def slots_from(moment: datetime) -> list[datetime]:
    """The starts of the slots a checkout at `moment` may be counted in, current first."""
    first = slot_start(moment)
    return [first + SLOT * index for index in range(LOOKAHEAD_SLOTS)]


def slot_key(store_id: str, start: datetime) -> str:
    return f"slot:{store_id}:{start.strftime('%Y%m%dT%H%M')}"


def order_weight(lines: list[tuple[int, int]]) -> int:
    """The items an order counts for against a cap: (quantity, cap weight) per line."""
    return sum(quantity * weight for quantity, weight in lines)


def deferred_ready_around(start: datetime) -> datetime:
    """When an order sent to the later slot starting at `start` is promised: by that slot's end
    (the kitchen makes it during the slot)."""
    return start + SLOT
