"""Keep-alive (REALTIME.md: the server pings every 20 s and drops a socket that has not
answered in 10 s), with the intervals shortened to half a second. The pings of all sockets share
one timer per process (server/uvicorn_adapter/keepalive.py), so each may come up to a second late."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

import pytest_asyncio

from tests.harness import ServerProcess
from tests.realtime.conftest import Site

OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA


class HandClient:
    """A WebSocket client written by hand, so the test decides whether pings get answered."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, token: str) -> HandClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write((f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = await reader.readuntil(b"\r\n\r\n")
        assert response.startswith(b"HTTP/1.1 101"), response
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes] | None:
        """The next server frame (opcode, payload), or None when the connection ended."""
        try:
            head = await self.reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            return head[0] & 0x0F, await self.reader.readexactly(length)
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return None

    def pong(self, payload: bytes) -> None:
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(bytes([0x80 | OP_PONG, 0x80 | len(payload)]) + mask + masked)

    def close(self) -> None:
        self.writer.close()


@pytest_asyncio.fixture(scope="module")
async def quick_pings(site: Site) -> ServerProcess:
    server = site.deployment.server(WS_PING_INTERVAL_SECONDS="0.5", WS_PING_TIMEOUT_SECONDS="0.5")
    await site.deployment.start(server)
    return server


async def test_a_socket_that_answers_pings_stays_open(site: Site, quick_pings: ServerProcess):
    client = await HandClient.open(quick_pings.port, site.alice.access_token)
    try:
        answered = 0
        async with asyncio.timeout(20):
            while answered < 4:
                frame = await client.frame()
                assert frame is not None, "the server dropped a socket that answers its pings"
                opcode, payload = frame
                assert opcode != OP_CLOSE, payload
                if opcode == OP_PING:
                    client.pong(payload)
                    answered += 1
    finally:
        client.close()


async def test_a_socket_that_stops_answering_is_closed_1011(site: Site, quick_pings: ServerProcess):
    client = await HandClient.open(quick_pings.port, site.alice.access_token)
    try:
        pings = 0
        async with asyncio.timeout(20):
            while True:
                frame = await client.frame()
                assert frame is not None, "connection ended without a close frame"
                opcode, payload = frame
                if opcode == OP_PING:
                    pings += 1  # never answered
                elif opcode == OP_CLOSE:
                    break
        assert pings == 1  # closed after the first unanswered ping, before a second one
        assert struct.unpack("!H", payload[:2])[0] == 1011
        assert payload[2:] == b"keepalive ping timeout"
        assert await client.frame() is None  # and the connection ends
    finally:
        client.close()

