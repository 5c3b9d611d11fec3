"""The connection under an ASGI WebSocket, reached through the protocol that owns its `receive`.

What the session needs from it (server/realtime/session.py, `ServerSocket`): writing a whole
pre-built frame straight to the transport (the lean protocol only) and resetting a peer that
stopped reading (any uvicorn protocol: the ASGI close would wait for a buffer that never drains).
"""

from __future__ import annotations

from typing import Any


class TransportSocket:
    """A connection whose frames go through its protocol's ASGI `send`: it can only be reset."""

    __slots__ = ("transport",)
    writes_frames = False

    def __init__(self, transport: Any) -> None:
        self.transport = transport

    def try_write(self, frame: bytes) -> bool:
        return False  # its frames go through its protocol's ASGI send only

    def next_message(self) -> Any:
        raise RuntimeError("this connection's messages are read through its ASGI receive only")

    def abort(self) -> None:
        self.transport.abort()


class LeanSocket(TransportSocket):
    """A lean protocol's connection: frames may be written directly while it is open and not
    pushing back. `open` is kept by the protocol (`LeanWebSocketProtocol._track_open`) after
    everything that may change it, so that the fan-out's check per socket reads one flag."""

    __slots__ = ("_protocol", "open")
    writes_frames = True

    def __init__(self, protocol: Any) -> None:
        super().__init__(protocol.transport)
        self._protocol = protocol
        self.open = False

    def try_write(self, frame: bytes) -> bool:
        """Write `frame` if the connection takes it now (open, and not pushing back); False
        writes nothing."""
        if self.open and not self.transport.is_closing():
            self.transport.write(frame)
            return True
        return False

    def next_message(self) -> Any:
        return self._protocol.next_message()


def socket_of(receive: Any) -> TransportSocket | None:
    """The connection under the WebSocket whose ASGI `receive` this is, when the server exposes it
    (uvicorn's protocols pass their own bound `receive` and keep the transport as `.transport`)."""
    owner = getattr(receive, "__self__", None)
    lean = getattr(owner, "orderpulse_socket", None)
    if lean is not None:
        found: TransportSocket = lean()
        return found
    transport = getattr(owner, "transport", None)
    # Duck-typed: uvloop's transports do not derive from asyncio's classes.
    return TransportSocket(transport) if callable(getattr(transport, "abort", None)) else None
