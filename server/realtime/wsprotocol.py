"""uvicorn's sans-I/O WebSocket protocol, made cheaper for thousands of idle sockets.

Two changes, both measured with a few thousand subscribed sockets (see README, Performance):

- uvicorn keeps the parsed upgrade request and the handshake response (two header maps, a few
  KiB) until the connection ends, though neither is read once the handshake is done: they are
  let go after the accept.
- uvicorn's keep-alive gives every socket two timers (the next ping, the pong deadline), so
  1,000 sockets pinging every 20 s wake the server 100 times a second, one socket at a time.
  Here the pings and pong deadlines of every socket of a process share one timer that fires at
  most once a second and handles all that are due (a ping goes out up to a second later than
  `ping_interval`, a dead peer is dropped up to a second later than `ping_timeout`).
"""

from __future__ import annotations

import asyncio
import math
import random
import struct
from itertools import chain

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class KeepaliveWheel:
    """Due pings and pong deadlines of the sockets of one event loop, bucketed by whole second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pings: dict[int, set[LeanWebSocketProtocol]] = {}
        self.pongs: dict[int, set[LeanWebSocketProtocol]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None

    def add(self, table: dict[int, set[LeanWebSocketProtocol]], protocol: LeanWebSocketProtocol,
            delay: float) -> int:
        slot = math.ceil(self.loop.time() + delay)
        table.setdefault(slot, set()).add(protocol)
        if self._timer_slot is None or slot < self._timer_slot:
            self._arm(slot)
        return slot

    @staticmethod
    def discard(table: dict[int, set[LeanWebSocketProtocol]], protocol: LeanWebSocketProtocol,
                slot: int | None) -> None:
        members = table.get(slot) if slot is not None else None
        if members is not None:
            members.discard(protocol)
            if not members:
                del table[slot]  # type: ignore[arg-type]

    def _arm(self, slot: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_slot = self.loop.call_at(slot, self._tick), slot

    def _tick(self) -> None:
        self._timer = self._timer_slot = None
        now = self.loop.time() + 0.001
        for slot in [s for s in self.pongs if s <= now]:
            for protocol in self.pongs.pop(slot):
                protocol.keepalive_timeout()
        for slot in [s for s in self.pings if s <= now]:
            for protocol in self.pings.pop(slot):
                protocol.send_keepalive_ping()
        upcoming = min(chain(self.pings, self.pongs), default=None)
        if upcoming is not None:
            self._arm(upcoming)


_wheels: dict[asyncio.AbstractEventLoop, KeepaliveWheel] = {}


def _wheel(loop: asyncio.AbstractEventLoop) -> KeepaliveWheel:
    wheel = _wheels.get(loop)
    if wheel is None:
        wheel = _wheels[loop] = KeepaliveWheel(loop)
    return wheel


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    _ping_slot: int | None = None
    _pong_slot: int | None = None

    async def send(self, message) -> None:  # type: ignore[override]
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            self.request = None
            self.response = None

    # --- keep-alive on the shared wheel (same behaviour as uvicorn's own, one timer per process)

    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        self._ping_slot = _wheel(self.loop).add(_wheel(self.loop).pings, self, delay)

    def send_keepalive_ping(self) -> None:
        self._ping_slot = None
        if self.close_sent or self.transport.is_closing():
            return
        # A random payload identifies this ping, so stale or unsolicited pongs are ignored.
        self.pending_ping_payload = struct.pack("!I", random.getrandbits(32))
        self.ping_sent_at = self.loop.time()
        self.conn.send_ping(self.pending_ping_payload)
        self.transport.write(b"".join(self.conn.data_to_send()))
        if self.ping_timeout is not None:
            self._pong_slot = _wheel(self.loop).add(_wheel(self.loop).pongs, self, self.ping_timeout)
        else:
            self.schedule_ping()

    def handle_pong(self, event) -> None:  # type: ignore[no-untyped-def]
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        if self._pong_slot is not None:
            KeepaliveWheel.discard(_wheel(self.loop).pongs, self, self._pong_slot)
            self._pong_slot = None
            self.schedule_ping()

    def keepalive_timeout(self) -> None:
        self._pong_slot = None
        super().keepalive_timeout()

    def stop_keepalive(self) -> None:
        wheel = _wheel(self.loop)
        KeepaliveWheel.discard(wheel.pings, self, self._ping_slot)
        KeepaliveWheel.discard(wheel.pongs, self, self._pong_slot)
        self._ping_slot = self._pong_slot = None
        super().stop_keepalive()
