"""Giving freed memory back to the system after many subscribers leave.

The tables of sockets that watched many orders are large enough for the C allocator but freed
piecemeal, and glibc keeps such freed pages in the process. With 50 sockets each watching 1,000
orders closed, the server's RSS stayed 7.2 MiB above its baseline; after `malloc_trim(0)` it was
back within 2 % of it (README, "Real-time budgets"). Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import time
from collections.abc import Callable

from server import metrics

# Entries (watched orders and the versions sent of them) released before a trim is worth its ~4 ms.
TRIM_AFTER_ENTRIES = 10_000
TRIM_EVERY_SECONDS = 5.0
# A trim waits until subscribers stopped leaving for this long (a wave of closes ends first, or
# the trim would find most of the wave's memory still in use), or, under steady churn, for a minute.
QUIET_SECONDS = 1.0
CHURN_SECONDS = 60.0


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(name), "malloc_trim", None) if name else None
    except OSError:
        return None


class Trimmer:
    """Counts what detached subscribers released; `maybe_trim` returns the memory once enough was."""

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._released = 0
        self._last = 0.0
        self._last_release = 0.0

    def released(self, entries: int) -> None:
        self._released += entries
        self._last_release = time.monotonic()

    async def maybe_trim(self) -> None:
        now = time.monotonic()
        if self._trim is None or self._released < TRIM_AFTER_ENTRIES or now - self._last < TRIM_EVERY_SECONDS:
            return
        if now - self._last_release < QUIET_SECONDS and now - self._last < CHURN_SECONDS:
            return
        self._released, self._last = 0, now
        # ctypes lets go of the GIL for the call, so a thread keeps the walk of the heap off the loop.
        await asyncio.to_thread(self._trim, 0)
        metrics.MEMORY_TRIMS.inc()
