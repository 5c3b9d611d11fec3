"""uvicorn's sans-I/O WebSocket protocol, made cheaper for thousands of idle sockets.

Measured with a few thousand subscribed sockets (README, "The uvicorn adapter"):

- uvicorn keeps the parsed upgrade request and the handshake response (two header maps, a few
  KiB) until the connection ends, though neither is read once the handshake is done: they are
  let go after the accept.
- The pings and pong deadlines of every socket share one timer per process (keepalive.py)
  instead of two timers per socket.
- The fan-out may write an event's pre-built frame straight to the transport (sockets.py).
"""

from __future__ import annotations

import random
import struct
from typing import TYPE_CHECKING

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from server.uvicorn_adapter.keepalive import KeepaliveWheel, wheel_for
from server.uvicorn_adapter.sockets import LeanSocket

if TYPE_CHECKING:
    from uvicorn._types import ASGISendEvent


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    _ping_slot: int | None = None
    _pong_slot: int | None = None

    def orderpulse_socket(self) -> LeanSocket:
        """This connection, for direct writes from the fan-out (found by `sockets.socket_of`)."""
        return LeanSocket(self)

    async def send(self, message: ASGISendEvent) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # uvicorn types them as always set; it reads neither after the handshake.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]

    # --- keep-alive on the shared wheel (same behaviour as uvicorn's own, one timer per process)

    def schedule_ping(self) -> None:
        assert self.ping_interval is not None
        delay = max(0.0, self.ping_interval - self.last_ping_rtt)
        wheel = wheel_for(self.loop)
        self._ping_slot = wheel.add(wheel.pings, self, delay)

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
            wheel = wheel_for(self.loop)
            self._pong_slot = wheel.add(wheel.pongs, self, self.ping_timeout)
        else:
            self.schedule_ping()

    def handle_pong(self, event) -> None:  # type: ignore[no-untyped-def]
        if self.pending_ping_payload is None or bytes(event.data) != self.pending_ping_payload:
            return
        self.last_ping_rtt = self.loop.time() - self.ping_sent_at
        self.pending_ping_payload = None
        if self._pong_slot is not None:
            KeepaliveWheel.discard(wheel_for(self.loop).pongs, self, self._pong_slot)
            self._pong_slot = None
            self.schedule_ping()

    def keepalive_timeout(self) -> None:
        self._pong_slot = None
        super().keepalive_timeout()

    def stop_keepalive(self) -> None:
        wheel = wheel_for(self.loop)
        KeepaliveWheel.discard(wheel.pings, self, self._ping_slot)
        KeepaliveWheel.discard(wheel.pongs, self, self._pong_slot)
        self._ping_slot = self._pong_slot = None
        super().stop_keepalive()
