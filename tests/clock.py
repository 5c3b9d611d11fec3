"""A clock that tests move by hand: deadlines, lockouts and windows pass at once, without sleeping."""

from __future__ import annotations

import asyncio
import math
import time
from datetime import datetime, timedelta

from server.domain.clock import utcnow


class ManualClock:
    """Stands still until `advance` moves it; whatever sleeps on it wakes once moved past its time.

    Starts at the real time (or `start`), so what MongoDB expires by its own clock stays put.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or utcnow()
        self._monotonic = time.monotonic()
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._monotonic

    def advance(self, seconds: float) -> None:
        """Move both clocks forward by `seconds` (to the millisecond) and wake the sleepers now due."""
        step = timedelta(milliseconds=round(seconds * 1000))
        self._now += step
        self._monotonic += step.total_seconds()
        for due, woken in self._sleepers:
            if due <= self._monotonic and not woken.done():
                woken.set_result(None)

    def sleeping(self, seconds: float) -> int:
        """How many sleep until exactly `seconds` from now: a test waits for a part to be asleep."""
        return sum(1 for due, woken in self._sleepers
                   if math.isclose(due - self._monotonic, seconds, abs_tol=1e-6) and not woken.done())

    async def sleep(self, seconds: float, wake: asyncio.Event | None = None) -> None:
        if seconds <= 0 or (wake is not None and wake.is_set()):
            await asyncio.sleep(0)
            return
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        sleeper = (self._monotonic + seconds, woken)
        self._sleepers.append(sleeper)
        waits: set[asyncio.Future] = {woken}
        if wake is not None:
            waits.add(asyncio.ensure_future(wake.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._sleepers.remove(sleeper)
            for waiting in waits:
                waiting.cancel()
