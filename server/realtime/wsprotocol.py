"""uvicorn's sans-I/O WebSocket protocol, minus the handshake it keeps for the socket's life.

uvicorn holds the parsed upgrade request and the handshake response (two header maps, a few KiB)
on the protocol object until the connection ends, though neither is read once the handshake is
done. A tracking server holds thousands of idle sockets, so they are let go after the accept.
"""

from __future__ import annotations

from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    async def send(self, message) -> None:  # type: ignore[override]
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            self.request = None
            self.response = None
