"""Time: one clock and the two ways the contract writes a moment."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Protocol
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    """Now, in UTC, truncated to milliseconds (what MongoDB stores)."""
    now = datetime.now(timezone.utc)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Clock(Protocol):
    """What the services, the deadline enforcer and the rate limiters read time from; tests pass
    one they move by hand instead of sleeping."""

    def now(self) -> datetime:
        """Wall-clock now in UTC, truncated to milliseconds."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for intervals."""

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        """Return once `seconds` have passed on this clock, or as soon as `wake` is set."""


class SystemClock:
    """The machine's clock, which production runs on."""

    def now(self) -> datetime:
        return utcnow()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        if wake is None:
            await asyncio.sleep(seconds)
            return
        try:
            await asyncio.wait_for(wake.wait(), seconds)
        except TimeoutError:
            pass


SYSTEM_CLOCK = SystemClock()


def as_utc(moment: datetime | str) -> datetime:
    """UTC-aware; accepts the naive datetimes and date strings some MongoDB servers hand back."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def iso_z(moment: datetime | None) -> str | None:
    """`2024-03-18T14:30:00.000Z`, or None."""
    if moment is None:
        return None
    moment = as_utc(moment)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def js_date_string(moment: datetime, zone: ZoneInfo) -> str:
    """`Mon Mar 25 2024 14:30:00 GMT+0530`, the way JavaScript's Date prints, without the zone name."""
    local = as_utc(moment).astimezone(zone)
    return local.strftime("%a %b %d %Y %H:%M:%S GMT%z")


def partner_timestamp(moment: datetime, zone: ZoneInfo) -> str:
    """`2024-03-18 14:32:10.123+05:30`, the timestamp style of seed 004."""
    local = as_utc(moment).astimezone(zone)
    offset = local.strftime("%z")
    return local.strftime("%Y-%m-%d %H:%M:%S.") + f"{local.microsecond // 1000:03d}{offset[:3]}:{offset[3:]}"


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
