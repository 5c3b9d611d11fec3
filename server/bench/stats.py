"""Percentiles and time series over raw samples."""

from __future__ import annotations

import math
from typing import Iterable, Sequence

PERCENTILES = (50, 90, 99)


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not ordered:
        return math.nan
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples: Iterable[float], scale: float = 1000.0) -> dict[str, float]:
    """count, p50, p90, p99, max and mean of samples in seconds, given in ms (scale=1000)."""
    ordered = sorted(samples)
    if not ordered:
        return {"count": 0, "p50": math.nan, "p90": math.nan, "p99": math.nan,
                "max": math.nan, "mean": math.nan}
    out: dict[str, float] = {"count": len(ordered)}
    for p in PERCENTILES:
        out[f"p{p}"] = percentile(ordered, p) * scale
    out["max"] = ordered[-1] * scale
    out["mean"] = sum(ordered) / len(ordered) * scale
    return out


def rate_series(times: Iterable[float], start: float, bucket: float = 1.0) -> list[tuple[float, float]]:
    """Events per second in buckets of `bucket` seconds, from `start` (same clock as times)."""
    counts: dict[int, int] = {}
    for t in times:
        index = int((t - start) // bucket)
        if index >= 0:
            counts[index] = counts.get(index, 0) + 1
    if not counts:
        return []
    return [((i + 0.5) * bucket, counts.get(i, 0) / bucket) for i in range(max(counts) + 1)]


def worst_series(samples: Iterable[tuple[float, float]], start: float,
                 bucket: float = 1.0) -> list[tuple[float, float]]:
    """The largest value (in ms) of the `(time, seconds)` samples in each bucket of `bucket`
    seconds from `start`; empty buckets read 0."""
    worst: dict[int, float] = {}
    for t, value in samples:
        index = int((t - start) // bucket)
        if index >= 0:
            worst[index] = max(worst.get(index, 0.0), value * 1000)
    if not worst:
        return []
    return [((i + 0.5) * bucket, worst.get(i, 0.0)) for i in range(max(worst) + 1)]


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """Prometheus-style quantile from cumulative (upper bound, count) buckets, sorted by bound."""
    if not buckets or buckets[-1][1] <= 0:
        return math.nan
    total = buckets[-1][1]
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return previous_bound
            if count == previous_count:
                return bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / (count - previous_count)
        previous_bound, previous_count = bound, count
    return previous_bound
