"""The floors a throughput result is divided by, measured in the same run with the same client.

- HTTP: a bare Starlette endpoint answering the poll-status path (GET) and the order path
  (POST /api/orders, 201, after reading the request body) with a fixed body (the bytes of a real
  answer), in its own uvicorn process with the server's uvicorn options (httptools, uvloop, one
  worker, proxy headers, no access log): what one process of this stack can answer.
- Fan-out (the transport floor): a minimal asyncio server on uvloop, handshakes and frames by
  hand, no WebSocket library, holding the same number of subscribers; each event is one
  pre-framed byte string written to every socket's transport in a plain loop, timed like the
  server's `orderpulse_fanout_seconds`: the cost of the writes themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import os
import socket
import subprocess
import sys
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from server.bench.rawhttp import RawConnection, build_get
from server.bench.workers import Channel


class FloorError(RuntimeError):
    """A floor server did not start."""


class HttpFloor:
    """A bare Starlette endpoint in its own uvicorn process, listening on a loopback port."""

    def __init__(self, body: bytes, folder: Path) -> None:
        self.body_file = folder / "floor-body.json"
        self.body_file.write_bytes(body)
        self.log_path = folder / "floor-http.log"
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=2048)
        self.port = self.listener.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self, probe_path: str, timeout: float = 30.0) -> HttpFloor:
        """Start the process on the bound socket and wait until it answers `probe_path`."""
        fd = self.listener.fileno()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "server.bench.floors", "--fd", str(fd), "--body-file", str(self.body_file)],
                pass_fds=[fd], stdout=log, stderr=subprocess.STDOUT)
        self.listener.close()  # the child holds its own copy; connections queue in the backlog meanwhile
        connection = RawConnection("127.0.0.1", self.port)
        try:
            await connection.connect()
            status, _ = await asyncio.wait_for(
                connection.request(build_get(f"127.0.0.1:{self.port}", probe_path, "floor")), timeout)
        except (OSError, ConnectionError, TimeoutError) as error:
            self.stop()
            raise FloorError(f"the HTTP floor did not answer: {error or type(error).__name__}; "
                             f"{self.log_path.read_text()[-300:]}") from error
        finally:
            connection.close()
        if status != 200:
            self.stop()
            raise FloorError(f"the HTTP floor answered {status}")
        return self

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def cpu_seconds(self) -> float | None:
        """User + system CPU of the floor process so far."""
        if not self.process:
            return None
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def floor_app(body: bytes) -> Any:
    """The Starlette app of the HTTP floor: the poll-status and order paths, a constant JSON body."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def poll_status(request: Any) -> Response:
        return Response(body, media_type="application/json")

    async def place_order(request: Any) -> Response:
        await request.body()  # the server reads and parses the order's body before it answers
        return Response(body, status_code=201, media_type="application/json")

    return Starlette(routes=[Route("/api/orders/{order_id}/poll-status", poll_status),
                             Route("/api/orders", place_order, methods=["POST"])])


def _serve_http_floor(fd: int, body: bytes) -> None:
    import uvicorn

    listener = socket.socket(fileno=fd)
    config = uvicorn.Config(floor_app(body), interface="asgi3", http="httptools", loop="uvloop",
                            lifespan="off", workers=1, proxy_headers=True, access_log=False,
                            log_level="warning")
    uvicorn.Server(config).run(sockets=[listener])


# --- fan-out ------------------------------------------------------------------------------


@dataclass
class FanoutFloorSpec:
    backlog: int = 2048


WEBSOCKET_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def server_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, unfragmented server-to-client frame (RFC 6455 section 5.2)."""
    size = len(payload)
    if size < 126:
        head = bytes((0x80 | opcode, size))
    elif size < 1 << 16:
        head = bytes((0x80 | opcode, 126)) + size.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 127)) + size.to_bytes(8, "big")
    return head + payload


def event_payload(order_id: str, status: str, size: int) -> bytes:
    """The JSON of an order event, padded to `size` bytes: what every fan-out server sends."""
    message = {"type": "order", "order": {"id": order_id, "orderStatus": status, "version": 1}, "pad": ""}
    message["pad"] = "x" * max(0, size - len(orjson.dumps(message)))
    return orjson.dumps(message)


def event_frame(order_id: str, status: str, size: int) -> bytes:
    """One server-to-client text frame carrying an order event, padded to `size` bytes of JSON."""
    return server_frame(event_payload(order_id, status, size))


class _FloorSocket(asyncio.Protocol):
    """One client of the transport floor: a hand-made handshake, then frames parsed in place.

    It answers a `subscribe` with an empty snapshot, a ping with a pong and a close with a close;
    fan-out writes go to its transport directly, so nothing of a WebSocket library runs per send.
    """

    def __init__(self, subscribers: set[asyncio.Transport]) -> None:
        self.subscribers = subscribers
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.upgraded = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.subscribers.discard(self.transport)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            key = b""
            for line in bytes(self.buffer[:end]).split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"sec-websocket-key":
                    key = value.strip()
            del self.buffer[:end + 4]
            accept = base64.b64encode(hashlib.sha1(key + WEBSOCKET_GUID).digest())
            self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
            self.upgraded = True
        while (frame := self._next_frame()) is not None:
            opcode, payload = frame
            if opcode == 0x1:
                message = orjson.loads(payload)
                if message.get("type") == "subscribe":
                    self.transport.write(server_frame(orjson.dumps(
                        {"type": "snapshot", "id": message.get("id"), "orders": []})))
                    self.subscribers.add(self.transport)
            elif opcode == 0x8:
                self.transport.write(server_frame(payload[:2], 0x8))
                self.transport.close()
            elif opcode == 0x9:
                self.transport.write(server_frame(payload, 0xA))

    def _next_frame(self) -> tuple[int, bytes] | None:
        """The next whole client frame (masked, unfragmented, as the bench's clients send), unmasked."""
        buffer = self.buffer
        if len(buffer) < 2:
            return None
        opcode, size, position = buffer[0] & 0x0F, buffer[1] & 0x7F, 2
        if size == 126:
            if len(buffer) < 4:
                return None
            size, position = int.from_bytes(buffer[2:4], "big"), 4
        elif size == 127:
            if len(buffer) < 10:
                return None
            size, position = int.from_bytes(buffer[2:10], "big"), 10
        masked = buffer[1] & 0x80
        mask_end = position + (4 if masked else 0)
        if len(buffer) < mask_end + size:
            return None
        payload = bytes(buffer[mask_end:mask_end + size])
        if masked:
            mask = bytes(buffer[position:mask_end]) * (size // 4 + 1)
            payload = bytes(a ^ b for a, b in zip(payload, mask))
        del buffer[:mask_end + size]
        return opcode, payload


async def fanout_floor_worker(channel: Channel, spec: FanoutFloorSpec) -> dict[str, Any]:
    """Serve WebSocket subscribers; on each ("event", frame) write the frame to every one of them."""
    subscribers: set[asyncio.Transport] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _FloorSocket(subscribers), "127.0.0.1", 0, backlog=spec.backlog)
    loops = array("d")
    async with server:
        channel.send(("ready", server.sockets[0].getsockname()[1]))
        while True:
            message = await channel.recv()
            if message[0] != "event":
                break
            frame = message[1]
            started = time.perf_counter()
            for transport in subscribers:
                transport.write(frame)
            elapsed = time.perf_counter() - started
            loops.append(elapsed)
            channel.send(("sent", elapsed, len(subscribers)))
    return {"loop_seconds": loops}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The bench's HTTP floor: a bare Starlette endpoint.")
    parser.add_argument("--fd", type=int, required=True, help="listening socket inherited from the bench")
    parser.add_argument("--body-file", type=Path, required=True, help="the body every answer carries")
    args = parser.parse_args(argv)
    _serve_http_floor(args.fd, args.body_file.read_bytes())


if __name__ == "__main__":
    main()
