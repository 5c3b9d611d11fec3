"""A client that stops reading must not slow anyone else, and is dropped after the stall limit
(WS_STALL_CLOSE_SECONDS=2 on the shared server)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import socket
import struct
import time
from pathlib import Path

from tests.realtime.conftest import Site, metric, metrics_of
from tests.support import until

TCP_ESTABLISHED = "01"


class StalledClient:
    """A WebSocket client written by hand: it completes the handshake, sends frames, and never
    reads another byte, with a small receive buffer so the server's writes back up quickly."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    async def open(cls, port: int, token: str, receive_buffer: int = 4096) -> StalledClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        await loop.sock_sendall(sock, (
            f"GET /ws?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        response = b""
        while b"\r\n\r\n" not in response:  # read the handshake answer byte by byte, nothing more
            chunk = await loop.sock_recv(sock, 1)
            assert chunk, "server closed during the handshake"
            response += chunk
        assert response.startswith(b"HTTP/1.1 101"), response
        return cls(sock)

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    async def send(self, frame: dict) -> None:
        """Send one masked text frame; a connection the server already dropped is ignored."""
        payload = json.dumps(frame).encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        try:
            await asyncio.get_running_loop().sock_sendall(self.sock, header + mask + masked)
        except (ConnectionResetError, BrokenPipeError):
            pass

    async def drained_to_the_end(self, timeout: float) -> bool:
        """Read what is buffered; True once the server has dropped the connection (EOF or reset)."""
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = await asyncio.wait_for(loop.sock_recv(self.sock, 1 << 16), deadline - time.monotonic())
            except (ConnectionResetError, BrokenPipeError):
                return True
            except TimeoutError:
                return False
            if not chunk:
                return True
        return False

    def close(self) -> None:
        self.sock.close()


def server_side_established(server_port: int, client_port: int) -> bool:
    """Whether the server's end of a loopback TCP connection is still open, from /proc/net/tcp."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if local_port == server_port and remote_port == client_port and fields[3] == TCP_ESTABLISHED:
            return True
    return False


async def test_a_stalled_socket_does_not_delay_a_healthy_one_and_is_dropped_after_the_stall_limit(site: Site):
    store = await site.api.store(site.deployment.admin)
    note = "Please pack the sauces separately and add extra napkins; " * 5
    note = note[:300]
    for batch in range(4):
        await asyncio.gather(*(site.api.place_order(site.alice, store, specialInstructions=note) for _ in range(25)))
    baseline = metric(await metrics_of(site.server), "orderpulse_sockets_open")

    healthy = await site.watcher(store.staff)
    await healthy.subscribe(storeId=store.id)
    stalled = await StalledClient.open(site.server.port, store.staff.access_token)
    try:
        await until(lambda: server_side_established(site.server.port, stalled.local_port),
                    message="the server side of the stalled socket")
        await until(lambda: _sockets_open_at_least(site, baseline + 2), message="two open sockets")
        # Each snapshot of the 100-order board is ~100 KB: asking for one 15 times a second
        # fills the kernel buffers, then the server's sends to the stalled socket block. Every
        # new order adds a large kitchen-view event on top, and must reach the healthy socket.
        async def keep_asking() -> None:
            for n in itertools.count():
                await stalled.send({"type": "subscribe", "storeId": store.id, "id": n})
                await asyncio.sleep(1 / 15)  # under the 20 frames a second limit

        asking = asyncio.create_task(keep_asking())
        started = time.monotonic()
        try:
            while server_side_established(site.server.port, stalled.local_port):
                assert time.monotonic() - started < 25, "the server never dropped the stalled connection"
                created = await site.api.place_order(site.alice, store, specialInstructions=note)
                await until(lambda created=created: created["id"] in healthy.orders, timeout=2,
                            message="the healthy socket's event while another socket is stalled")
        finally:
            asking.cancel()
        assert time.monotonic() - started >= 2  # not before the stall limit
        assert healthy.regressions == []
        assert not healthy.closed
        assert await stalled.drained_to_the_end(timeout=5)
        await until(lambda: _sockets_open_at_least(site, baseline + 1, exactly=True), timeout=5,
                    message="the socket gauge back to the healthy socket alone")
        # The healthy socket still works afterwards.
        last = await site.api.place_order(site.alice, store, specialInstructions=note)
        await until(lambda: last["id"] in healthy.orders, timeout=2)
        text = await metrics_of(site.server)
        assert metric(text, "orderpulse_events_fanned_out_total") > 0
    finally:
        stalled.close()
        await healthy.close()


async def _sockets_open_at_least(site: Site, value: float, exactly: bool = False) -> bool:
    current = metric(await metrics_of(site.server), "orderpulse_sockets_open")
    return current == value if exactly else current >= value
