"""Answers written in the parser's callback (`InlineAnswer`, server/uvicorn_adapter/http_limits.py):
a real uvicorn on loopback with the adapter's HTTP protocol, an application that records what
reaches it, and raw connections, so that ordering, keep-alive and closing are seen as a client
sees them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from server.embedded_mongo import free_loopback_port
from server.uvicorn_adapter.http_limits import Answer, ConnectionLimits, guarded_protocol
from tests.support import until

KEEP_ALIVE = 0.3
INLINE_BODY = b"inline"


class Recorder:
    """The application behind the protocol: `/held` waits for `release`, everything else answers at once."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.release = asyncio.Event()
        self.inline_asked: list[str] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        if scope["path"] == "/held":
            await self.release.wait()
        body = b"app:" + scope["path"].encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    def inline(self, scope: dict[str, Any]) -> Answer | None:
        self.inline_asked.append(scope["path"])
        if scope["path"] != "/inline":
            return None
        return 200, [(b"content-type", b"text/plain"), (b"content-length", b"6"), (b"x-inline", b"yes")], INLINE_BODY


@contextlib.asynccontextmanager
async def serving(app: Recorder, max_connections: int = 100) -> AsyncIterator[int]:
    protocol = guarded_protocol(ConnectionLimits(5.0, 8192, max_connections), app.inline)
    config = uvicorn.Config(app, host="127.0.0.1", port=free_loopback_port(), lifespan="off", http=protocol,
                            log_level="warning", timeout_keep_alive=KEEP_ALIVE)  # type: ignore[arg-type]
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started, timeout=10, message="uvicorn to listen")
    try:
        yield config.port
    finally:
        app.release.set()
        server.should_exit = True
        await task


def request(path: str, version: str = "1.1") -> bytes:
    return f"GET {path} HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n".encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
    headers = dict(line.split(": ", 1) for line in lines)
    headers = {name.lower(): value for name, value in headers.items()}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 5)
    return int(status_line.split()[1]), headers, body


async def test_an_inline_answer_is_written_without_the_app_and_keeps_the_connection():
    app = Recorder()
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(3):
            writer.write(request("/inline"))
            status, headers, body = await read_response(reader)
            assert (status, body, headers["x-inline"]) == (200, INLINE_BODY, "yes")
            # The server's default headers, as uvicorn writes them on every answer.
            assert headers["server"] == "uvicorn" and headers["date"].endswith("GMT")
            assert "connection" not in headers
        writer.write(request("/other"))
        assert (await read_response(reader))[2] == b"app:/other"
        assert app.paths == ["/other"]
        assert app.inline_asked == ["/inline"] * 3 + ["/other"]
        writer.close()


async def test_http_1_0_gets_connection_close_and_the_connection_ends():
    app = Recorder()
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("/inline", "1.0"))
        status, headers, body = await read_response(reader)
        assert (status, headers["connection"], body) == (200, "close", INLINE_BODY)
        assert await asyncio.wait_for(reader.read(), 5) == b""
        assert app.paths == []


async def test_a_pipelined_inline_request_waits_for_the_answer_before_it():
    app = Recorder()
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("/held") + request("/inline") + request("/inline"))
        await until(lambda: app.paths == ["/held"], message="the held request to reach the app")
        app.release.set()
        answers = [await read_response(reader) for _ in range(3)]
        # In order. A queued request started while others still wait behind it goes to the app
        # (answering it inline would recurse once per queued request); the last one is inline.
        assert [body for _, _, body in answers] == [b"app:/held", b"app:/inline", INLINE_BODY]
        writer.close()


async def test_a_request_after_an_inline_answer_in_the_same_read_is_not_cut_by_keep_alive():
    """An inline answer arms the keep-alive timer in the middle of a read; a slower request parsed
    after it in the same read must not be closed under when that timer runs out."""
    app = Recorder()
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("/inline") + request("/held"))
        assert (await read_response(reader))[2] == INLINE_BODY
        await until(lambda: app.paths == ["/held"], message="the held request to reach the app")
        # Another connection left idle after an answer is closed once keep-alive runs out: the
        # event that says the first connection's timer would have fired too.
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        idle_writer.write(request("/inline"))
        await read_response(idle_reader)
        assert await asyncio.wait_for(idle_reader.read(), 5) == b""
        app.release.set()
        assert (await read_response(reader))[2] == b"app:/held"
        writer.write(request("/inline"))
        assert (await read_response(reader))[2] == INLINE_BODY
        writer.close()


async def test_a_connection_past_the_limit_is_refused_not_answered_inline():
    app = Recorder()
    async with serving(app, max_connections=1) as port:
        first_reader, first_writer = await asyncio.open_connection("127.0.0.1", port)
        first_writer.write(request("/inline"))
        assert (await read_response(first_reader))[2] == INLINE_BODY
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("/inline"))
        status, headers, _ = await read_response(reader)
        assert (status, headers["retry-after"]) == (503, "1")
        first_writer.write(request("/inline"))
        assert (await read_response(first_reader))[2] == INLINE_BODY
        first_writer.close()
        writer.close()


async def test_a_request_expecting_100_continue_goes_to_the_app():
    app = Recorder()
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /inline HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n\r\n")
        assert (await read_response(reader))[2] == b"app:/inline"
        assert app.paths == ["/inline"]
        writer.close()


async def test_an_inline_answer_that_fails_leaves_the_request_to_the_app(caplog):
    app = Recorder()

    def broken(scope: dict[str, Any]) -> Answer | None:
        raise ValueError("broken")

    app.inline = broken  # type: ignore[method-assign]
    async with serving(app) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request("/inline"))
        assert (await read_response(reader))[2] == b"app:/inline"
        writer.close()
    assert "An inline answer failed" in caplog.text
