"""uvicorn's sans-I/O WebSocket protocol, made cheaper for thousands of idle sockets.

Measured with a few thousand subscribed sockets (README, "The uvicorn adapter"):

- uvicorn keeps the parsed upgrade request and the handshake response (two header maps, a few
  KiB) until the connection ends, though neither is read once the handshake is done: they are
  let go after the accept.
- websockets' handshake parser keeps the request until the connection ends: its headers are
  emptied once the handshake is done, and the protocol's own attribute dictionary is compacted.
- The receive queue and the `writable` flag are made for their one reader and one writer, without
  the three deques and the Event of an `asyncio.Queue` and the deque of an `asyncio.Event` (about
  3.8 KiB per socket, most of what was left after the handshake).
- The pings and pong deadlines of every socket share one timer per process (keepalive.py)
  instead of two timers per socket.
- The fan-out may write an event's pre-built frame straight to the transport (sockets.py).
- Every coroutine between uvicorn and the session's read is a frame kept for the connection's
  life: uvicorn's proxy-headers middleware is applied to the scope without staying on the stack
  (`ProxyRewrite`), and the session reads the receive queue itself (`next_message`), without
  Starlette's and uvicorn's `receive` coroutines in between.
"""

from __future__ import annotations

import asyncio
import random
import struct
import weakref
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from server.uvicorn_adapter.keepalive import KeepaliveWheel, wheel_for
from server.uvicorn_adapter.sockets import LeanSocket

if TYPE_CHECKING:
    from uvicorn._types import ASGIReceiveEvent, ASGISendEvent


class Inbox:
    """What uvicorn's protocol uses of its `asyncio.Queue` (`put_nowait`, `get`, `empty`), for the
    one task that reads a connection: a message is handed to that reader when it waits, else kept."""

    __slots__ = ("_loop", "_messages", "_reader")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._messages: list[ASGIReceiveEvent] | None = None
        self._reader: asyncio.Future[ASGIReceiveEvent] | None = None

    def put_nowait(self, message: ASGIReceiveEvent) -> None:
        reader, self._reader = self._reader, None
        if reader is not None and not reader.done():
            reader.set_result(message)
        elif self._messages is None:
            self._messages = [message]
        else:
            self._messages.append(message)

    def get(self) -> asyncio.Future[ASGIReceiveEvent]:
        """The next message, as a future to await (already done when one is kept)."""
        if self._reader is not None and not self._reader.done():
            raise RuntimeError("a connection's messages are read by one task at a time")
        future: asyncio.Future[ASGIReceiveEvent] = self._loop.create_future()
        messages = self._messages
        if messages:
            future.set_result(messages.pop(0))
            if not messages:
                self._messages = None
        else:
            self._reader = future
        return future

    def empty(self) -> bool:
        return not self._messages

    def awaited(self) -> bool:
        """Whether the reader is waiting: the next message goes straight to it."""
        return self._reader is not None and not self._reader.done()


class _Ready:
    """What `Writable.wait` returns while the connection takes writes: awaiting it does not suspend."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, bool]:
        return True
        yield  # a generator, so that `await` gets True without suspending


_READY = _Ready()


class Writable:
    """What uvicorn's protocol uses of its `writable` `asyncio.Event`, with the list of waiting
    sends made only while the connection pushes back."""

    __slots__ = ("_loop", "_set", "_waiters")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._set = True
        self._waiters: list[asyncio.Future[bool]] | None = None

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        self._set = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(True)

    def clear(self) -> None:
        self._set = False

    def wait(self) -> asyncio.Future[bool] | _Ready:
        if self._set:
            return _READY
        future: asyncio.Future[bool] = self._loop.create_future()
        if self._waiters is None:
            self._waiters = [future]
        else:  # cancelled waits are dropped here, as asyncio.Event drops them
            self._waiters = [waiter for waiter in self._waiters if not waiter.done()]
            self._waiters.append(future)
        return future


async def _no_app(scope: Any, receive: Any, send: Any) -> None:
    """What `ProxyRewrite` runs uvicorn's middleware around: nothing, so it ends without suspending."""


class ProxyRewrite:
    """uvicorn's `ProxyHeadersMiddleware` (trusted proxies' X-Forwarded-For and -Proto), applied
    to a WebSocket's scope before its application is called rather than around it: the
    middleware's coroutine is run to its end at once, around an application that does nothing,
    and the connection's coroutine is the application's own. Around the real application, the
    middleware's frame would be kept for as long as the socket is open."""

    __slots__ = ("app", "_rewrite")

    def __init__(self, middleware: ProxyHeadersMiddleware) -> None:
        self.app = middleware.app
        self._rewrite = ProxyHeadersMiddleware(_no_app)
        self._rewrite.trusted_hosts = middleware.trusted_hosts

    def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        rewrite = self._rewrite(scope, receive, send)
        try:
            rewrite.send(None)
        except StopIteration:
            return self.app(scope, receive, send)
        rewrite.close()
        raise RuntimeError("uvicorn's ProxyHeadersMiddleware suspended around an application that does not")


_rewrites: weakref.WeakKeyDictionary[ProxyHeadersMiddleware, ProxyRewrite] = weakref.WeakKeyDictionary()


def _application(app: Any) -> Any:
    """The application a lean protocol calls: uvicorn's, with its proxy-headers middleware as a `ProxyRewrite`."""
    if not isinstance(app, ProxyHeadersMiddleware):
        return app
    rewrite = _rewrites.get(app)
    if rewrite is None:
        rewrite = _rewrites[app] = ProxyRewrite(app)
    return rewrite


class LeanWebSocketProtocol(WebSocketsSansIOProtocol):
    _ping_slot: int | None = None
    _pong_slot: int | None = None
    _direct: LeanSocket | None = None

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.app = _application(self.app)
        # Replaced before the connection is made: nothing has used uvicorn's own yet.
        self.queue = Inbox(self.loop)  # type: ignore[assignment]
        self.writable = Writable(self.loop)  # type: ignore[assignment]

    def next_message(self) -> asyncio.Future[ASGIReceiveEvent]:
        """The connection's next ASGI message, as a future (what `receive` returns, without its
        coroutine). Reading from the peer, paused while a message waits for the application,
        resumes once the application has taken the last one kept, as with uvicorn's `receive`."""
        queue: Inbox = self.queue  # type: ignore[assignment]
        message = queue.get()
        self._resume_reading_if_drained()
        return message

    def send_receive_event_to_app(self) -> None:
        # uvicorn pauses reading after queueing each message, and its `receive` resumes it as
        # soon as the reader has the message. A message handed straight to a waiting reader
        # leaves nothing queued: reading goes on while the application handles it, so the peer's
        # pings and pongs are answered meanwhile, as they were through `receive`.
        queue: Inbox = self.queue  # type: ignore[assignment]
        handed = queue.awaited()
        super().send_receive_event_to_app()
        if handed:
            self._resume_reading_if_drained()

    def _resume_reading_if_drained(self) -> None:
        if self.read_paused and self.queue.empty():
            self.read_paused = False
            self.transport.resume_reading()

    def orderpulse_socket(self) -> LeanSocket:
        """This connection, for direct writes from the fan-out (found by `sockets.socket_of`)."""
        if self._direct is None:
            self._direct = LeanSocket(self)
            self._track_open()
        return self._direct

    def _track_open(self) -> None:
        """Keep `LeanSocket.open` true exactly while a frame may be written: the handshake done,
        the connection open in websockets' state machine, and not pushing back. Called after
        every method that may change one of those (data in, a send, pause and resume, the
        keep-alive's failure, shutdown, the end)."""
        direct = self._direct
        if direct is not None:
            direct.open = (self.handshake_complete and self.writable.is_set()
                           and self.conn.state is State.OPEN)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._track_open()

    def pause_writing(self) -> None:
        super().pause_writing()
        self._track_open()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._track_open()

    def shutdown(self) -> None:
        super().shutdown()
        self._track_open()

    def connection_lost(self, exc: Exception | None) -> None:
        direct, self._direct = self._direct, None  # it points back here: no cycle once closed
        if direct is not None:
            direct.open = False
        super().connection_lost(exc)

    async def send(self, message: ASGISendEvent) -> None:
        try:
            await super().send(message)
        finally:
            self._track_open()
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # websockets' parser keeps the request while the connection lasts; nothing reads it again.
            self.request.headers.clear()
            # uvicorn types them as always set; it reads neither after the handshake.
            self.request = None  # type: ignore[assignment]
            self.response = None  # type: ignore[assignment]
            # Its forty attributes outgrew the class's shared-key table, and the dictionary grown
            # for them is twice the size of a copy made at once (1,584 bytes against 832).
            self.__dict__ = dict(self.__dict__)

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
        self._track_open()

    def stop_keepalive(self) -> None:
        wheel = wheel_for(self.loop)
        KeepaliveWheel.discard(wheel.pings, self, self._ping_slot)
        KeepaliveWheel.discard(wheel.pongs, self, self._pong_slot)
        self._ping_slot = self._pong_slot = None
        super().stop_keepalive()
