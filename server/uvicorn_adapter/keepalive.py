"""Keep-alive for every WebSocket of an event loop on one timer, bucketed by whole second.

uvicorn gives each socket two timers (the next ping, the pong deadline), so 1,000 sockets pinging
every 20 s wake the server 100 times a second, one socket at a time. Here the timer fires at
most once a second and handles every socket that is due: a ping goes out up to a second later
than asked, and a dead peer is dropped up to a second later than its deadline.
"""

from __future__ import annotations

import asyncio
import math
from itertools import chain
from typing import Protocol


class KeepaliveMember(Protocol):
    def send_keepalive_ping(self) -> None: ...

    def keepalive_timeout(self) -> None: ...


Slots = dict[int, set[KeepaliveMember]]


class KeepaliveWheel:
    """Due pings and pong deadlines of the sockets of one event loop, by the whole second they are due."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pings: Slots = {}
        self.pongs: Slots = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None

    def add(self, table: Slots, member: KeepaliveMember, delay: float) -> int:
        """Make `member` due in `table` `delay` seconds from now (rounded up to a whole second)."""
        slot = math.ceil(self.loop.time() + delay)
        table.setdefault(slot, set()).add(member)
        if self._timer_slot is None or slot < self._timer_slot:
            self._arm(slot)
        return slot

    @staticmethod
    def discard(table: Slots, member: KeepaliveMember, slot: int | None) -> None:
        members = table.get(slot) if slot is not None else None
        if members is not None:
            members.discard(member)
            if not members:
                del table[slot]  # type: ignore[arg-type]

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_slot = self.loop.call_at(slot, self._tick), slot

    def _tick(self) -> None:
        self._timer = self._timer_slot = None
        now = self.loop.time() + 0.001  # a timer may fire a clock tick early
        for slot in [s for s in self.pongs if s <= now]:
            for member in self.pongs.pop(slot):
                member.keepalive_timeout()
        for slot in [s for s in self.pings if s <= now]:
            for member in self.pings.pop(slot):
                member.send_keepalive_ping()
        upcoming = min(chain(self.pings, self.pongs), default=None)
        if upcoming is not None:
            self._arm(upcoming)


_wheels: dict[asyncio.AbstractEventLoop, KeepaliveWheel] = {}


def wheel_for(loop: asyncio.AbstractEventLoop) -> KeepaliveWheel:
    """The one wheel of `loop`."""
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = KeepaliveWheel(loop)
    return wheel
