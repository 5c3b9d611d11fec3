"""The ways a subscriber connects: `GET /ws` (WebSocket) and Server-Sent Events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from websockets.protocol import State as WsState
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from server import metrics
from server.domain import messages
from server.domain.errors import ApiError
from server.http.body import ascii_int
from server.http.security import authenticate, has_token
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange
from server.realtime.hub import Hub, SubscriptionRefused

CLOSE_UNAUTHORISED = 4401
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_TRY_AGAIN = 1013
# How long a close frame may wait behind unsent data before the connection is reset instead.
CLOSE_FRAME_SECONDS = 1.0


def _ws_render(change: OrderChange, sees_kitchen: bool) -> str:
    return change.frame(sees_kitchen)


def _ws_snapshot(entries: list[dict[str, Any]], frame_id: Any = None) -> str:
    body: dict[str, Any] = {"type": "snapshot", "orders": entries}
    if frame_id is not None:
        body["id"] = frame_id
    return orjson.dumps(body).decode()


def _error(code: str, message: str, frame_id: Any = None) -> str:
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if frame_id is not None:
        body["id"] = frame_id
    return orjson.dumps(body).decode()


class SocketSession:
    """One WebSocket: reads client frames, writes queued frames, closes on expiry or abuse.

    An idle socket costs no task of its own: frames are read by the connection's ASGI task,
    events are usually written straight from the fan-out (`direct_writer`), and a writer task
    exists only while frames are queued.
    """

    def __init__(self, websocket: WebSocket, hub: Hub, subscriber: Subscriber, settings,
                 transport: asyncio.BaseTransport | None = None) -> None:
        self.ws = websocket
        self.hub = hub
        self.sub = subscriber
        self.settings = settings
        self._transport = transport
        self._window_start = time.monotonic()
        self._window_frames = 0
        self._closing = False
        self._reader: asyncio.Task[Any] | None = None
        self._receiving = False
        self._read_stopped = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Read until the peer leaves or `close` is done with the connection."""
        self._reader = asyncio.current_task()
        expiry = asyncio.get_running_loop().call_later(
            max(0.0, self.sub.principal.expires_at - time.time()), self._expire)
        self.sub.abort = self.close
        self.sub.on_ready = self._start_writer
        try:
            await self._read()
        except asyncio.CancelledError:
            # `_stop_reading` ended the read; any other cancellation is let through.
            if not self._read_stopped or self._reader is None or self._reader.uncancel() > 0:
                raise
        finally:
            expiry.cancel()
            self.sub.on_ready = None
            writer = self._writer
            if writer is not None and not writer.done():
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)

    def _expire(self) -> None:
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

    def _stop_reading(self) -> None:
        """End the read loop if it is waiting for a frame: the session is over."""
        if (self._receiving and not self._read_stopped and self._reader is not None
                and self._reader is not asyncio.current_task()):
            self._read_stopped = True
            self._reader.cancel()

    def direct_writer(self, protocol: Any):
        """Write a ready-made event frame to the transport, if the connection is open and not
        pushing back; False sends the event through the queue instead."""
        transport = self._transport
        writable = protocol.writable
        conn = protocol.conn

        def write_now(change: OrderChange, sees_kitchen: bool) -> bool:
            if self._closing or not writable.is_set() or conn.state is not WsState.OPEN or transport.is_closing():
                return False
            transport.write(change.wire(sees_kitchen))
            return True

        return write_now

    def _drop(self) -> None:
        """Reset the TCP connection at once, discarding whatever the peer never read."""
        if self._transport is not None:
            self._transport.abort()

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

    async def _read(self) -> None:
        while not self._closing:
            self._receiving = True
            try:
                message = await self.ws.receive()
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
            if text is None:
                if len(message.get("bytes") or b"") > self.settings.ws_max_frame_bytes:
                    await self.close(CLOSE_TOO_BIG)
                    return
                self.sub.send_control(_error("bad_request", "Frames must be JSON text."))
                continue
            if len(text.encode()) > self.settings.ws_max_frame_bytes:
                await self.close(CLOSE_TOO_BIG)
                return
            await self._handle(text)

    def _within_rate(self) -> bool:
        now = time.monotonic()
        if now - self._window_start >= 1.0:
            self._window_start, self._window_frames = now, 0
        self._window_frames += 1
        return self._window_frames <= self.settings.ws_max_frames_per_second

    async def _handle(self, text: str) -> None:
        try:
            frame = orjson.loads(text)
        except orjson.JSONDecodeError:
            self.sub.send_control(_error("bad_request", "Frames must be JSON objects."))
            return
        if not isinstance(frame, dict):
            self.sub.send_control(_error("bad_request", "Frames must be JSON objects."))
            return
        frame_id = frame.get("id")
        kind = frame.get("type")
        try:
            if kind == "ping":
                reply: dict[str, Any] = {"type": "pong"}
                if frame_id is not None:
                    reply["id"] = frame_id
                self.sub.send_control(orjson.dumps(reply).decode())
            elif kind == "subscribe":
                self.sub.send_snapshot(await self._subscribe(frame), frame_id)
            elif kind == "unsubscribe":
                await self._unsubscribe(frame)
            elif kind == "auth":
                raise SubscriptionRefused("bad_request", messages.WS_ALREADY_AUTHENTICATED)
            else:
                raise SubscriptionRefused("bad_request", "Unknown frame type.")
        except SubscriptionRefused as refused:
            self.sub.send_control(_error(refused.code, refused.message, frame_id))

    def _targets(self, frame: dict[str, Any]) -> tuple[list[str] | None, str | None]:
        order_ids, store_id = frame.get("orderIds"), frame.get("storeId")
        if (order_ids is None) == (store_id is None):
            raise SubscriptionRefused("bad_request", "Give either orderIds or storeId.")
        if order_ids is not None:
            if (not isinstance(order_ids, list) or not order_ids or len(order_ids) > 100
                    or not all(isinstance(o, str) for o in order_ids)):
                raise SubscriptionRefused("bad_request", "orderIds must be a list of 1 to 100 order ids.")
            return list(dict.fromkeys(order_ids)), None
        if not isinstance(store_id, str):
            raise SubscriptionRefused("bad_request", "storeId must be a store id.")
        return None, store_id

    async def _subscribe(self, frame: dict[str, Any]) -> list[dict[str, Any]]:
        order_ids, store_id = self._targets(frame)
        if order_ids is not None:
            return await self.hub.subscribe_orders(self.sub, order_ids)
        return await self.hub.subscribe_store(self.sub, store_id or "")

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        order_ids, store_id = self._targets(frame)
        if order_ids is not None:
            await self.hub.unsubscribe_orders(self.sub, order_ids)
        else:
            await self.hub.unsubscribe_store(self.sub, store_id or "")


def _protocol_of(receive: Receive) -> Any:
    """uvicorn's sans-I/O WebSocket protocol under this connection, when that is the server:
    it exposes its flow control (`writable`) and connection state (`conn.state`)."""
    protocol = getattr(receive, "__self__", None)
    conn = getattr(protocol, "conn", None)
    if isinstance(getattr(protocol, "writable", None), asyncio.Event) and hasattr(conn, "state"):
        return protocol
    return None


def _transport_of(receive: Receive) -> asyncio.BaseTransport | None:
    """The TCP transport under an ASGI connection, when the server exposes it (uvicorn's
    protocols are the owners of the `receive` they pass and keep it as `.transport`)."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    # Duck-typed: uvloop's transports do not derive from asyncio's classes.
    return transport if callable(getattr(transport, "abort", None)) else None


class WebSocketApp:
    """The `/ws` ASGI app; plain ASGI so the session can reach the connection's transport."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await websocket_endpoint(WebSocket(scope, receive=receive, send=send), _transport_of(receive),
                                 _protocol_of(receive))


async def _first_frame_principal(websocket: WebSocket, timeout: float):
    """The caller named by the socket's first frame, `{"type": "auth", "token": "..."}`, which
    keeps the token out of the URL (and so out of every proxy's and server's request log).
    None when the peer left first; 401 for any other first frame, a bad token or the deadline."""
    try:
        message = await asyncio.wait_for(websocket.receive(), timeout)
    except TimeoutError:
        raise ApiError(401, messages.WS_AUTH_REQUIRED) from None
    if message["type"] == "websocket.disconnect":
        return None
    try:
        frame = orjson.loads(message.get("text") or "")
    except orjson.JSONDecodeError:
        frame = None
    token = frame.get("token") if isinstance(frame, dict) and frame.get("type") == "auth" else None
    if not isinstance(token, str) or not token:
        raise ApiError(401, messages.WS_AUTH_REQUIRED)
    principal = await websocket.app.state.runtime.accounts.authenticate(token)
    reply: dict[str, Any] = {"type": "authenticated"}
    if frame.get("id") is not None:
        reply["id"] = frame["id"]
    await websocket.send_text(orjson.dumps(reply).decode())
    return principal


async def websocket_endpoint(websocket: WebSocket, transport: asyncio.BaseTransport | None = None,
                             protocol: Any = None) -> None:
    runtime = websocket.app.state.runtime
    await websocket.accept()
    try:
        if has_token(websocket, allow_query=True):
            principal = await authenticate(websocket, allow_query=True)
        else:
            principal = await _first_frame_principal(websocket, runtime.settings.ws_auth_timeout_seconds)
            if principal is None:
                return
    except ApiError:
        await websocket.close(CLOSE_UNAUTHORISED)
        return
    subscriber = Subscriber(principal, runtime.settings.ws_queue_size, _ws_render, _ws_snapshot)
    runtime.hub.attach(subscriber)
    metrics.SOCKETS_OPEN.inc()
    try:
        session = SocketSession(websocket, runtime.hub, subscriber, runtime.settings, transport)
        if protocol is not None and transport is not None:
            subscriber.write_now = session.direct_writer(protocol)
        await session.run()
    finally:
        metrics.SOCKETS_OPEN.dec()
        await runtime.hub.detach(subscriber)


# --- Server-Sent Events -----------------------------------------------------------------------

def _sse_render(change: OrderChange, sees_kitchen: bool) -> str:
    return f"event: order\nid: {change.version}\ndata: {change.frame(sees_kitchen)}\n\n"


def _sse_snapshot(entries: list[dict[str, Any]], frame_id: Any = None) -> str:
    newest = max((e["version"] for e in entries), default=0)
    snapshot = orjson.dumps({"type": "snapshot", "orders": entries}).decode()
    return f"event: snapshot\nid: {newest}\ndata: {snapshot}\n\n"


async def _stream_principal(request: Request):
    """The caller of an event stream: a single-use `?ticket=` (what a browser's EventSource can
    send without putting its access token in the URL), else the bearer header or `?token=`.
    Verified once per request (a ticket works only once)."""
    principal = request.scope.get("orderpulse.principal")
    if principal is None:
        ticket = request.query_params.get("ticket")
        if ticket:
            principal = await request.app.state.runtime.accounts.redeem_stream_ticket(ticket)
        else:
            principal = await authenticate(request, allow_query=True)
        request.scope["orderpulse.principal"] = principal
    return principal


def _last_event_id(request: Request) -> int | None:
    """The version a client resumes from; our event ids are always ASCII whole numbers, so any
    other value was not sent by this server and is refused (400) rather than guessed at."""
    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    if not raw:
        return None
    version = ascii_int(raw.strip())
    if version is None:
        raise ApiError(400, messages.LAST_EVENT_ID_INVALID)
    return version


class EventStream(StreamingResponse):
    """An SSE response that releases its subscriber however the stream ends, even when the
    client left before the first byte (the generator's own `finally` would never run then)."""

    def __init__(self, content, release) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._release = release

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


async def _sse(request: Request, subscribe) -> StreamingResponse:
    runtime = request.app.state.runtime
    principal = await _stream_principal(request)
    resume_from = _last_event_id(request)
    subscriber = Subscriber(principal, runtime.settings.ws_queue_size, _sse_render, _sse_snapshot)
    heartbeat = runtime.settings.sse_heartbeat_seconds

    async def stream():
        task = asyncio.current_task()

        async def abort(code: int) -> None:
            subscriber.close()
            if task is not None and task is not asyncio.current_task():
                task.cancel()

        subscriber.abort = abort
        metrics.SSE_STREAMS_OPEN.inc()
        try:
            yield "retry: 2000\n\n"
            while not subscriber.closed:
                frame = await subscriber.next_frame(timeout=heartbeat)
                subscriber.sending()
                yield frame if frame is not None else ": heartbeat\n\n"
                subscriber.sent()
        finally:
            metrics.SSE_STREAMS_OPEN.dec()

    # From the first watch until the response owns the subscriber, any failure detaches it here:
    # otherwise the hub and the broker would keep it, and its channels, for the process's life.
    try:
        try:
            entries = await subscribe(runtime.hub, subscriber)
        except SubscriptionRefused as refused:
            status = {"forbidden": 403, "not_found": 404}.get(refused.code, 400)
            raise ApiError(status, refused.message) from None
        runtime.hub.attach(subscriber)
        # Resuming a single-order stream that is already current sends nothing new.
        current = [e for e in entries if resume_from is None or e["version"] > resume_from]
        if current or resume_from is None or len(subscriber.order_ids) != 1:
            subscriber.send_snapshot(entries)
        else:
            subscriber.release_events()
        return EventStream(stream(), release=lambda: runtime.hub.detach(subscriber))
    except BaseException:
        await runtime.hub.detach(subscriber)
        raise


async def order_events(request: Request):
    order_id = request.path_params["order_id"]
    principal = await _stream_principal(request)
    await request.app.state.runtime.orders.visible_order(principal, order_id)  # REST's 404 and 403
    return await _sse(request, lambda hub, sub: hub.subscribe_orders(sub, [order_id]))


async def store_events(request: Request):
    store_id = request.path_params["store_id"]
    return await _sse(request, lambda hub, sub: hub.subscribe_store(sub, store_id))


routes = [
    WebSocketRoute("/ws", WebSocketApp()),
    Route("/api/orders/{order_id}/events", order_events, methods=["GET"]),
    Route("/api/stores/{store_id}/events", store_events, methods=["GET"]),
]
