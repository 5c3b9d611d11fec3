"""uvicorn's httptools protocol, bounded in what one connection may hold before its request is read.

uvicorn has no setting for these with httptools (`h11_max_incomplete_event_size` is h11's, and
`limit_concurrency` counts WebSockets too and is only checked once a head is complete):

- **Header deadline.** A connection that has not completed its request head within
  `HTTP_HEADER_TIMEOUT_SECONDS` of connecting (or, on a kept-alive connection, of the head's first
  byte) is closed: silently if it sent nothing, with `408` if it sent part of a head. The idle
  time between requests stays uvicorn's keep-alive timeout, and bodies are not timed here. All
  deadlines of a server share one timer.
- **Header size.** At most `HTTP_MAX_HEADER_BYTES` of request line and headers reach the parser
  (httptools buffers a header line until it ends); past that the answer is `431`.
- **Connections.** Past `HTTP_MAX_CONNECTIONS` open HTTP connections (upgraded WebSockets are
  not counted), a new connection's first request is answered `503` with `Retry-After` and the
  connection closed, so the ones already open keep working.

Each answer's head is held until its first body write and both leave in one `send()` (uvicorn
writes them apart: two system calls where one does; see `HeadHolder`).

**Answers in the parser's callback.** An application may give the protocol an `InlineAnswer`: a
plain function that, given a request's scope once its head is read, returns a whole answer or
None. The answer is written then and there, with the server's default headers (`date`,
`server`), keep-alive as uvicorn would decide it, and no request task, application call chain or
ASGI messages; None (and every request the function does not know) goes to the application as
usual. OrderPulse gives it the poll-status answers it holds in memory (`PollStatusFastPath`).

A refused connection gets its answer, then a half-close; what the client still sends is read and
dropped for a moment (up to `LINGER_SECONDS` or `LINGER_BYTES`) so that closing with unread input
does not reset the connection before the client has read the answer.

Written against uvicorn 0.54's `HttpToolsProtocol`; the adapter's guard (`__init__.py`) runs
uvicorn's own protocol instead, with one warning, on any other uvicorn.
"""

from __future__ import annotations

import asyncio
import http
import logging
import math
import sys
import weakref
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from server.domain import messages

log = logging.getLogger("orderpulse.http")

LINGER_SECONDS = 2.0
LINGER_BYTES = 1024 * 1024
FULL_WARNING_EVERY_SECONDS = 60.0
UNBOUNDED = sys.maxsize
_CONNECTION_CLOSE = ((b"connection", b"close"),)
# A body larger than this is written apart from its head rather than copied onto it.
JOIN_BODY_BYTES = 64 * 1024

# A request's scope (head read, body not) -> (status, headers, body), or None for "ask the app".
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
InlineAnswer = Callable[[dict[str, Any]], Answer | None]


@dataclass(frozen=True)
class ConnectionLimits:
    header_timeout: float
    max_header_bytes: int
    max_connections: int
    # Headers the refusals written here carry, as the app's answers do (its security headers).
    answer_headers: tuple[tuple[bytes, bytes], ...] = ()


class ConnectionGuard:
    """The HTTP connections of one uvicorn server: those open, and the deadlines of unread heads."""

    def __init__(self, loop: asyncio.AbstractEventLoop, limits: ConnectionLimits) -> None:
        self.loop = loop
        self.limits = limits
        self.open: set[GuardedHttpToolsProtocol] = set()
        # Deadline per connection; insertion order is deadline order, since every deadline is
        # "now + the same timeout", so expiry walks from the front and stops at the first not due.
        self.heads: dict[GuardedHttpToolsProtocol, float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._warned_full_at = -math.inf

    def expect_head(self, protocol: GuardedHttpToolsProtocol) -> None:
        if protocol in self.heads:
            return
        deadline = self.loop.time() + self.limits.header_timeout
        self.heads[protocol] = deadline
        if self._timer is None:
            self._timer = self.loop.call_at(deadline, self._expire)

    def head_done(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.heads.pop(protocol, None)

    def forget(self, protocol: GuardedHttpToolsProtocol) -> None:
        self.open.discard(protocol)
        self.heads.pop(protocol, None)

    def note_full(self) -> None:
        now = self.loop.time()
        if now - self._warned_full_at >= FULL_WARNING_EVERY_SECONDS:
            self._warned_full_at = now
            log.warning("%d HTTP connections open (HTTP_MAX_CONNECTIONS): new connections are answered 503",
                        self.limits.max_connections)

    def _expire(self) -> None:
        self._timer = None
        now = self.loop.time() + 0.001  # a timer may fire a clock tick early
        overdue = []
        for protocol, deadline in self.heads.items():
            if deadline > now:
                break
            overdue.append(protocol)
        for protocol in overdue:
            del self.heads[protocol]
            protocol.head_overdue()
        if self.heads:
            self._timer = self.loop.call_at(next(iter(self.heads.values())), self._expire)


_guards: weakref.WeakKeyDictionary[Any, ConnectionGuard] = weakref.WeakKeyDictionary()


_STATUS_LINES = {status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()
                 for status in http.HTTPStatus if status.value >= 200}


def _answer(status: int, *header_lists: Any, body: bytes = b"") -> bytes:
    """A whole HTTP/1.1 answer: status line, each list's headers in order, the blank line, `body`."""
    content = [_STATUS_LINES[status]]
    for headers in header_lists:
        for name, value in headers:
            content += (name, b": ", value, b"\r\n")
    content += (b"\r\n", body)
    return b"".join(content)


def _error_body(message: str) -> bytes:
    return orjson.dumps({"success": False, "message": message})


class HeadHolder(asyncio.Transport):
    """The transport one request cycle writes to. uvicorn writes an answer's head and its body in
    two `transport.write` calls, each a `send()` system call on an open socket (a third of a short
    answer's cost). The head is held until the next write, which for a whole answer comes in the
    same event-loop step, and both leave in one call; anything else (a streamed answer's first
    chunk, a `100 Continue`) goes out at the end of the step, so nothing waits longer."""

    __slots__ = ("_transport", "_loop", "_held", "_writes")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._writes = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data) if not isinstance(data, bytes) else data
        self._writes += 1
        if self._writes == 1:
            self._held = data
            self._loop.call_soon(self.flush)
            return
        held, self._held = self._held, None
        if held is None:
            self._transport.write(data)
        elif len(data) <= JOIN_BODY_BYTES:
            self._transport.write(held + data)
        else:
            self._transport.write(held)
            self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def close(self) -> None:
        self.flush()
        self._transport.close()


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a header deadline, a header size limit and a connection limit."""

    limits: ConnectionLimits  # set on the subclass `guarded_protocol` makes
    inline_answer: InlineAnswer | None = None  # likewise

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        guard = _guards.get(server_state)
        if guard is None:
            guard = _guards[server_state] = ConnectionGuard(self.loop, self.limits)
        self.guard = guard
        self.heads = guard.heads
        self.max_head = self.limits.max_header_bytes
        # Bytes the current request head may still use; unbounded while no head is being read.
        # One counter keeps the per-request cost of the checks to a comparison.
        self.head_room = self.max_head
        self.over_limit = False
        self.upgraded = False
        self.refused = False
        self.dropped_bytes = 0
        self.linger_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = self.guard
        guard.open.add(self)
        if len(guard.open) > self.limits.max_connections:
            self.over_limit = True
            self.app = self._answer_busy  # uvicorn runs it for this connection's first request
            guard.note_full()
        guard.expect_head(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.forget(self)
        if self.linger_timer is not None:
            self.linger_timer.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if len(data) <= self.head_room:
            self.head_room -= len(data)
            HttpToolsProtocol.data_received(self, data)
        else:
            self._data_past_head_room(data)

    def _data_past_head_room(self, data: bytes) -> None:
        if self.refused:
            self.dropped_bytes += len(data)
            if self.dropped_bytes > LINGER_BYTES:
                self.transport.close()
            return
        # More than the head may hold: let the parser see only what fits, and the rest only if
        # the head ended within it (a body, or the next pipelined request).
        fits, self.head_room = self.head_room, 0
        if fits:
            HttpToolsProtocol.data_received(self, data[:fits])
        if self.upgraded or self.refused or self.transport.is_closing():
            return
        if self.head_room == 0:
            self.refuse(431, messages.HEADERS_TOO_LARGE.format(limit=self.max_head))
            return
        self.data_received(data[fits:])

    def on_message_begin(self) -> None:
        HttpToolsProtocol.on_message_begin(self)
        if self.timeout_keep_alive_task is not None:
            # An answer written inline earlier in this read armed the keep-alive timer; this
            # request is not idle time (uvicorn cancels it only when a read begins).
            self.timeout_keep_alive_task.cancel()
            self.timeout_keep_alive_task = None
        if self not in self.heads:
            self.guard.expect_head(self)

    def on_headers_complete(self) -> None:
        self.head_room = UNBOUNDED
        self.heads.pop(self, None)
        earlier = self.cycle
        HttpToolsProtocol.on_headers_complete(self)
        cycle = self.cycle
        if cycle is not earlier and cycle is not None and not cycle.response_complete:  # an upgrade makes no cycle
            cycle.transport = HeadHolder(self.transport, self.loop)

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        # Not for a pipelined request started as the one before it completes (`self.pipeline`
        # then still holds later ones): answering those here would recurse once per request.
        answer_inline = self.inline_answer
        if (answer_inline is not None and app is self.app and not self.over_limit and not self.pipeline
                and not self.expect_100_continue):
            try:
                answer = answer_inline(cycle.scope)
            except Exception:  # a parser callback must not raise: the app answers, or logs its 500
                log.exception("An inline answer failed; the application answers instead")
                answer = None
            if answer is not None:
                self._write_answer(cycle, *answer)
                return
        HttpToolsProtocol._start_asgi_task(self, cycle, app)

    def _write_answer(self, cycle: Any, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        """What uvicorn's request cycle writes for this whole answer, written at once."""
        closing = () if cycle.keep_alive else _CONNECTION_CLOSE
        cycle.response_started = cycle.response_complete = True
        self.transport.write(_answer(status, self.server_state.default_headers, headers, closing, body=body))
        if not cycle.keep_alive:
            self.transport.close()
        self.on_response_complete()

    def on_message_complete(self) -> None:
        self.head_room = self.max_head
        HttpToolsProtocol.on_message_complete(self)

    def handle_websocket_upgrade(self) -> None:
        self.upgraded = True
        self.guard.forget(self)
        if self.over_limit:
            self.refuse(503, messages.TOO_MANY_CONNECTIONS.format(limit=self.limits.max_connections),
                        [(b"retry-after", b"1")])
            return
        super().handle_websocket_upgrade()
        # Its parser refers back to it: without this, each upgraded connection's HTTP protocol (with
        # its request's scope and headers) lives on until the cyclic collector finds it.
        self.parser = None  # type: ignore[assignment]

    def head_overdue(self) -> None:
        """The header deadline passed: close, with `408` if part of a head arrived."""
        if self.transport.is_closing():
            return
        if self.head_room < self.max_head:
            self.refuse(408, messages.HEADERS_TIMEOUT.format(seconds=f"{self.limits.header_timeout:g}"))
        elif self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head that never came: close after this answer
        else:
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes it cannot parse as HTTP: the same shape and headers as the
        app's own refusals (uvicorn's is plain text without them)."""
        self.refuse(400, msg)

    def refuse(self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        """Answer `status` and close; input is dropped from now on."""
        self.refused = True
        self.head_room = -1  # every read takes the slow path, which drops it
        self.guard.heads.pop(self, None)
        if self.cycle is not None and not self.cycle.response_complete:
            # An earlier response is still being written (pipelining): end the connection after it.
            self.cycle.keep_alive = False
            return
        body = _error_body(message)
        self.transport.write(_answer(
            status, self.server_state.default_headers, headers or (), self.limits.answer_headers,
            [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            _CONNECTION_CLOSE, body=body))
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    async def _answer_busy(self, scope: Any, receive: Any, send: Any) -> None:
        body = _error_body(messages.TOO_MANY_CONNECTIONS.format(limit=self.limits.max_connections))
        await send({"type": "http.response.start", "status": 503, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", b"1"), (b"connection", b"close"), *self.limits.answer_headers]})
        await send({"type": "http.response.body", "body": body})


def guarded_protocol(limits: ConnectionLimits, inline_answer: InlineAnswer | None = None,
                     ) -> type[GuardedHttpToolsProtocol]:
    """The protocol class to give uvicorn as `http=`, enforcing `limits` and answering what
    `inline_answer` knows without the application."""
    namespace = {"limits": limits, "inline_answer": staticmethod(inline_answer) if inline_answer else None}
    return type("OrderPulseHttpProtocol", (GuardedHttpToolsProtocol,), namespace)
