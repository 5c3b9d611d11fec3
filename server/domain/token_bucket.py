"""Token buckets per caller: a steady rate with a burst, for public work that costs CPU."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class TokenBuckets:
    """`rate` tokens a second up to `burst` per key; callers pass the monotonic time, so the rule
    stays pure. Keys that have refilled completely are forgotten when the table grows past
    `max_keys`, which bounds memory under a flood of new keys."""

    def __init__(self, rate: float, burst: float, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str, now: float) -> float | None:
        """None when `key` may go ahead (one token taken); else the seconds until it may."""
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / self.rate

    def _forget_full(self, now: float) -> None:
        refill = self.burst / self.rate
        self._buckets = {key: b for key, b in self._buckets.items() if now - b.at < refill}
        if len(self._buckets) >= self._max_keys:
            self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)


def retry_after(wait: float) -> str:
    """A `Retry-After` header value for a wait from `TokenBuckets.take`: whole seconds, at least 1."""
    return str(max(1, math.ceil(wait)))
