"""The checkout's UPI QR codes: drawn in a low-priority process, cached, rate-limited per address.

Drawing one is 7-30 ms of pure-Python CPU (segno), and the route is public: on the event loop,
six anonymous clients varying the link took a whole core, and a thread would still hold the GIL
against the loop. So codes are drawn by one child process at nice 10, at most `max_waiting` at a
time (then Unavailable), at most `per_minute` new codes per client address (then RateLimited), and
the last `cache_size` answers are kept, so a reloaded checkout page costs nothing.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import multiprocessing.connection
import os
import threading
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.domain.errors import RateLimited, Unavailable
from server.domain.token_bucket import TokenBuckets, retry_after
from server.services.login_throttle import address_subject

CACHE_SIZE = 256


def draw_svg(link: str) -> bytes:
    """The QR code of `link` as an SVG document (run in the drawing process)."""
    import segno  # imported where it draws: the server process never pays for it

    svg = io.BytesIO()
    segno.make(link, error="m").save(svg, kind="svg", scale=6, border=4, dark="#000", light="#fff",
                                      xmldecl=False, title="UPI payment QR code")
    return svg.getvalue()


def _start_drawing_process() -> None:
    """The drawing process's start: at a lower priority, and ending with the server. A server that
    exits through its shutdown stops the pool, but one killed (out of memory, SIGKILL) never does,
    and the drawing process would wait for work forever. The drawing library is imported before
    the priority drops: at nice 10 on a busy machine, the first customer's code waited seconds
    for an import that each later code does not need."""
    import segno  # noqa: F401  (draw_svg imports it again, for nothing)

    os.nice(10)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="exit-with-server", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])  # ready once the parent process has ended
    os._exit(0)


class PaymentQrCodes:
    def __init__(self, per_minute: float, max_waiting: int, clock: Clock = SYSTEM_CLOCK,
                 cache_size: int = CACHE_SIZE) -> None:
        self._clock = clock
        self._buckets = TokenBuckets(rate=per_minute / 60, burst=max(1.0, per_minute))
        self._max_waiting = max_waiting
        self._waiting = 0
        self._cache: OrderedDict[str, bytes] = OrderedDict()
        self._cache_size = cache_size
        self._pool: ProcessPoolExecutor | None = None

    async def svg(self, link: str, client_host: str) -> bytes:
        """The code of `link` (a valid payment link) for a caller at `client_host`."""
        cached = self._cache.get(link)
        if cached is not None:
            self._cache.move_to_end(link)
            return cached
        wait = self._buckets.take(address_subject(client_host), self._clock.monotonic())
        if wait is not None:
            seconds = retry_after(wait)
            raise RateLimited(messages.QR_CODES_RATE_LIMITED.format(seconds=seconds), retry_after=int(seconds))
        if self._waiting >= self._max_waiting:
            raise Unavailable(messages.SERVER_BUSY.format(seconds=1), retry_after=1)
        self._waiting += 1
        try:
            svg = await self._draw(link)
        finally:
            self._waiting -= 1
        self._cache[link] = svg
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return svg

    async def _draw(self, link: str) -> bytes:
        loop = asyncio.get_running_loop()
        if self._pool is None:
            # Spawned, not forked: a fork would copy the event loop, sockets and database client.
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_drawing_process)
        try:
            return await loop.run_in_executor(self._pool, draw_svg, link)
        except BrokenProcessPool:
            # The drawing process died (killed, out of memory): start a new one for the next code.
            self._pool = None
            raise Unavailable(messages.SERVER_BUSY.format(seconds=1), retry_after=1) from None

    def stop(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
