"""The per-caller, per-order poll interval of poll-status (API.md)."""

from __future__ import annotations

import math

from server.domain.clock import SYSTEM_CLOCK, Clock


class PollRateLimiter:
    """Remembers when each (caller, order) last polled; per process."""

    def __init__(self, min_interval: float, max_keys: int = 200_000, clock: Clock = SYSTEM_CLOCK) -> None:
        self._min_interval = min_interval
        self._clock = clock
        self._max_keys = max_keys
        self._last: dict[tuple[str, str], float] = {}

    def retry_after(self, caller: str, order_id: str) -> int | None:
        """None when the poll may proceed (and is recorded); else seconds to wait."""
        if self._min_interval <= 0:
            return None
        now = self._clock.monotonic()
        key = (caller, order_id)
        last = self._last.get(key)
        if last is not None and now - last < self._min_interval:
            return max(1, math.ceil(self._min_interval - (now - last)))
        if len(self._last) >= self._max_keys:
            self._prune(now)
        self._last[key] = now
        return None

    def _prune(self, now: float) -> None:
        self._last = {key: when for key, when in self._last.items() if now - when < self._min_interval}
        if len(self._last) >= self._max_keys:
            self._last.clear()
