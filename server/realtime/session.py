"""One authenticated WebSocket's life: its subscriber, its read loop, its writes, its close."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from server import metrics
from server.config import Settings
from server.domain import messages
from server.domain.access import Principal
from server.domain.errors import OrderPulseError, RateLimited
from server.realtime import frames
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange
from server.realtime.frames import (CLOSE_POLICY, CLOSE_SERVICE_RESTART, CLOSE_TOO_BIG, CLOSE_TOO_MANY,
                                    CLOSE_UNAUTHORISED, FrameRefused)
from server.realtime.hub import Hub

# How long a close frame may wait behind unsent data before the connection is reset instead.
CLOSE_FRAME_SECONDS = 1.0


class ServerSocket(Protocol):
    """The connection under a WebSocket, where the server exposes it (server/uvicorn_adapter)."""

    writes_frames: bool  # whether `try_write` may write and `next_message` may be used

    def try_write(self, frame: bytes) -> bool:
        """Write one whole serialised WebSocket frame if it goes out at once (the connection is
        open and not pushing back): True, or False with nothing written."""

    def abort(self) -> None:
        """Reset the TCP connection at once, discarding whatever the peer never read."""

    def next_message(self) -> Awaitable[Any]:
        """The connection's next ASGI receive message (as its `receive` gives it, without the
        coroutines of `receive` itself kept while an idle socket waits)."""


class Expiries:
    """When the tokens of one event loop's sockets expire, on one timer, by the whole second: a
    socket closes up to a second after its token expires, and keeps no timer of its own."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.due: dict[int, set[SocketSession]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_slot: int | None = None

    def add(self, session: SocketSession, delay: float) -> int:
        """Expire `session` `delay` seconds from now (rounded up to a whole second); its slot."""
        slot = math.ceil(self.loop.time() + delay)
        self.due.setdefault(slot, set()).add(session)
        if self._timer_slot is None or slot < self._timer_slot:
            if self._timer is not None:
                self._timer.cancel()
            self._timer, self._timer_slot = self.loop.call_at(slot, self._tick), slot
        return slot

    def discard(self, session: SocketSession, slot: int) -> None:
        sessions = self.due.get(slot)
        if sessions is not None:
            sessions.discard(session)
            if not sessions:
                del self.due[slot]

    def _tick(self) -> None:
        self._timer = self._timer_slot = None
        now = self.loop.time() + 0.001  # a timer may fire a clock tick early
        for slot in [s for s in self.due if s <= now]:
            for session in self.due.pop(slot):
                session.expire()
        if self.due:
            slot = min(self.due)
            self._timer, self._timer_slot = self.loop.call_at(slot, self._tick), slot


_expiries: dict[asyncio.AbstractEventLoop, Expiries] = {}


def expiries_of(loop: asyncio.AbstractEventLoop) -> Expiries:
    """The one `Expiries` of `loop`."""
    expiries = _expiries.get(loop)
    if expiries is None:
        expiries = _expiries[loop] = Expiries(loop)
    return expiries


def serve(websocket: WebSocket, hub: Hub, sign_in: Callable[[], Awaitable[Principal | None]], settings: Settings,
          socket: ServerSocket | None = None) -> Coroutine[Any, Any, None]:
    """Sign the socket in (`sign_in` accepts it and names its caller, None if it ended), then
    watch for that caller until either side ends it; to be awaited.

    Not a coroutine itself, and the session's whole life is one: every frame between the server
    and the socket's read is kept alive for each open socket."""
    return SocketSession(websocket, hub, settings, socket).run(sign_in)


class SocketSession:
    """One WebSocket: reads client frames, writes queued frames, closes on expiry or abuse.

    An idle socket costs no task of its own: frames are read by the connection's ASGI task (in
    `run`, whose frame is the only one of the session kept while it waits),
    events are usually written straight from the fan-out (`ServerSocket.try_write`), and a writer task
    exists only while frames are queued.
    """

    __slots__ = ("ws", "hub", "sub", "settings", "_socket", "_clock", "_window_start", "_window_frames", "_closing",
                 "_reader", "_receiving", "_read_stopped", "_writer", "_closer")
    sub: Subscriber  # from the moment the socket is signed in (`run`)

    def __init__(self, websocket: WebSocket, hub: Hub, settings: Settings, socket: ServerSocket | None = None) -> None:
        self.ws = websocket
        self.hub = hub
        self.settings = settings
        self._socket = socket
        self._clock = hub.clock
        self._window_start = self._clock.monotonic()
        self._window_frames = 0
        self._closing = False
        self._reader: asyncio.Task[Any] | None = None
        self._receiving = False
        self._read_stopped = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    async def run(self, sign_in: Callable[[], Awaitable[Principal | None]]) -> None:
        """Sign in, count the socket against its account, then read until the peer leaves or
        `close` is done with the connection."""
        principal = await sign_in()
        del sign_in  # not kept for the socket's life
        if principal is None:
            return
        hub, settings, socket = self.hub, self.settings, self._socket
        self.sub = sub = Subscriber(principal, settings.ws_queue_size, frames.order_event, frames.snapshot)
        sub.render_estimates = frames.estimates
        # The connection itself where the server exposes it: written to and read from directly.
        direct = socket if socket is not None and socket.writes_frames else None
        if direct is not None:
            # The fan-out calls its `try_write` once per socket, one flag to read (a closing
            # session has closed its subscriber, which offers nothing).
            sub.direct = direct
        try:
            hub.admit(sub)
        except RateLimited:  # the account's sockets and streams are all open already
            await self.ws.close(CLOSE_TOO_MANY)
            return
        hub.attach(sub)
        metrics.SOCKETS_OPEN.inc()
        self._reader = asyncio.current_task()
        expiries = expiries_of(asyncio.get_running_loop())
        expiry = expiries.add(self, max(0.0, sub.principal.expires_at - self._clock.now().timestamp()))
        sub.abort = self.close
        sub.reconnect = self.reconnect
        sub.on_ready = self._start_writer
        limit = settings.ws_max_frame_bytes
        try:
            while not self._closing:
                self._receiving = True
                try:
                    # Straight from the connection where it can (no `receive` coroutines kept while idle).
                    message = await (direct.next_message() if direct is not None else self.ws.receive())
                except (WebSocketDisconnect, RuntimeError):
                    return
                finally:
                    self._receiving = False
                if message["type"] == "websocket.disconnect":
                    return
                if not self._within_rate():
                    await self.close(CLOSE_POLICY)
                    return
                text = message.get("text")
                if frames.is_too_big(text if text is not None else message.get("bytes") or b"", limit):
                    await self.close(CLOSE_TOO_BIG)
                    return
                await self._handle(text)
                del message, text  # not held while the socket waits for its next frame, maybe for hours
        except asyncio.CancelledError:
            # `_stop_reading` ended the read; any other cancellation is let through.
            if not self._read_stopped or self._reader is None or self._reader.uncancel() > 0:
                raise
        finally:
            expiries.discard(self, expiry)
            sub.on_ready = None
            writer = self._writer
            if writer is not None and not writer.done():
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
            metrics.SOCKETS_OPEN.dec()
            await hub.detach(sub)

    def expire(self) -> None:
        """The token expired: close with 4401."""
        # Kept on the session: the loop holds only a weak reference to a running task.
        self._closer = asyncio.create_task(self.close(CLOSE_UNAUTHORISED))

    async def close(self, code: int) -> None:
        if self._closing:
            return
        self._closing = True
        self.sub.close()
        try:
            if self.ws.application_state == WebSocketState.CONNECTED:
                try:
                    await asyncio.wait_for(self.ws.close(code), CLOSE_FRAME_SECONDS)
                except Exception:
                    # A peer that does not read cannot take a close frame either. The server's
                    # own close would wait for the unsent buffer to drain, which never happens.
                    self._drop()
        finally:
            self._stop_reading()

    async def reconnect(self, retry_after_ms: int) -> None:
        """The drain: a `reconnect` frame naming when to come back, then close with 1012. Events
        still queued are dropped: the client's subscribe after reconnecting gets a fresh snapshot."""
        if self._closing:
            return
        self.sub.close()
        writer = self._writer
        if writer is not None and not writer.done():
            writer.cancel()  # its frame in flight would interleave with the reconnect frame
            await asyncio.gather(writer, return_exceptions=True)
        if self.ws.application_state == WebSocketState.CONNECTED:
            try:
                await asyncio.wait_for(self.ws.send_text(frames.reconnect(retry_after_ms)), CLOSE_FRAME_SECONDS)
            except Exception:
                pass  # the close below resets a peer that cannot take it
        await self.close(CLOSE_SERVICE_RESTART)

    def _stop_reading(self) -> None:
        """End the read loop if it is waiting for a frame: the session is over."""
        if (self._receiving and not self._read_stopped and self._reader is not None
                and self._reader is not asyncio.current_task()):
            self._read_stopped = True
            self._reader.cancel()

    def _drop(self) -> None:
        if self._socket is not None:
            self._socket.abort()

    def _start_writer(self) -> None:
        if not self._closing and (self._writer is None or self._writer.done()):
            self._writer = asyncio.create_task(self._write())

    async def _write(self) -> None:
        """Write queued frames until the queue is empty, then end."""
        try:
            while (frame := self.sub.pop_frame()) is not None:
                self.sub.sending()
                await self.ws.send_text(frame)
                self.sub.sent()
            self._writer = None  # a finished task keeps its coroutine; nothing needs it now
        except Exception:
            # The connection is gone or broken: nothing more can be written, so end the session.
            self._closing = True
            self.sub.close()
            self._drop()
            self._stop_reading()

    def _within_rate(self) -> bool:
        now = self._clock.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_frames = now, 0
        self._window_frames += 1
        return self._window_frames <= self.settings.ws_max_frames_per_second

    async def _handle(self, text: str | None) -> None:
        frame_id = None
        try:
            frame = frames.parse(text)
            frame_id = frame.id
            if frame.type == "ping":
                self.sub.send_control(frames.pong(frame_id))
            elif frame.type == "subscribe":
                if frame.mine:
                    entries = await self.hub.subscribe_mine(self.sub)
                elif frame.order_ids is not None:
                    entries = await self.hub.subscribe_orders(self.sub, frame.order_ids)
                else:
                    entries = await self.hub.subscribe_store(self.sub, frame.store_id or "")
                self.sub.send_snapshot(entries, frame_id)
            elif frame.type == "unsubscribe":
                if frame.mine:
                    await self.hub.unsubscribe_mine(self.sub)
                elif frame.order_ids is not None:
                    await self.hub.unsubscribe_orders(self.sub, frame.order_ids)
                else:
                    await self.hub.unsubscribe_store(self.sub, frame.store_id or "")
            else:  # a second `auth`
                raise FrameRefused(messages.WS_ALREADY_AUTHENTICATED, frame_id)
        except FrameRefused as refused:
            self.sub.send_control(frames.error(refused.code, refused.message, refused.frame_id))
        except OrderPulseError as refused:
            self.sub.send_control(frames.refused(refused, frame_id))
