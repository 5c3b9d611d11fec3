"""Server-Sent Events: one subscriber streamed as `text/event-stream`, with heartbeats."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from server import metrics
from server.config import Settings
from server.domain.access import Principal
from server.realtime import frames
from server.realtime.catalog_feed import CatalogFeed
from server.realtime.client import Subscriber
from server.realtime.events import OrderChange
from server.realtime.hub import Hub

RETRY_MILLISECONDS = 2000

Subscribe = Callable[[Hub, Subscriber], Awaitable[list[dict[str, Any]]]]
"""Starts watching for the subscriber and returns the snapshot's entries (an OrderPulseError if not allowed)."""


def render_event(change: OrderChange, sees_kitchen: bool) -> str:
    return change.rendered(("sse", sees_kitchen), lambda: (
        f"event: order\nid: {change.version}\ndata: {change.frame(sees_kitchen)}\n\n"))


def render_estimates(store_id: str, orders: list[dict[str, Any]]) -> str:
    """Estimates as a named `eta` event without an id: a resume point is always an order version."""
    return f"event: eta\ndata: {frames.estimates(store_id, orders)}\n\n"


def render_snapshot(entries: list[dict[str, Any]], frame_id: Any = None) -> str:
    """The snapshot as an event whose id is the newest version in it (where a resume starts)."""
    newest = max((e["version"] for e in entries), default=0)
    return f"event: snapshot\nid: {newest}\ndata: {frames.snapshot(entries)}\n\n"


class EventStream(StreamingResponse):
    """An SSE response that releases its subscriber however the stream ends, even when the
    client left before the first byte (the generator's own `finally` would never run then)."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], Awaitable[None]]) -> None:
        super().__init__(content, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._release()


async def open_stream(hub: Hub, settings: Settings, principal: Principal, subscribe: Subscribe,
                      resume_from: int | None, render: Callable[[OrderChange, bool], str] = render_event,
                      render_first: Callable[[list[dict[str, Any]], Any], str] = render_snapshot) -> EventStream:
    """The stream of what `subscribe` watches for `principal`, from its snapshot on; a resume
    (`resume_from`, the client's Last-Event-ID) of one order already current sends no snapshot.
    A refusal (server/domain/errors.py) passes through, with nothing left attached. `render` and `render_first`
    write its events and snapshots (another client's event format: server/http/campusbite_notifications.py)."""
    subscriber = Subscriber(principal, settings.ws_queue_size, render, render_first)
    # Named `eta` events: an EventSource's `onmessage` (CampusBite's stream) never sees them.
    subscriber.render_estimates = render_estimates
    heartbeat = settings.sse_heartbeat_seconds

    async def stream() -> AsyncIterator[str]:
        task = asyncio.current_task()

        async def abort(code: int) -> None:
            subscriber.close()
            if task is not None and task is not asyncio.current_task():
                task.cancel()

        drained: list[int] = []

        async def reconnect(retry_after_ms: int) -> None:
            # The drain: the stream ends with a `retry:` of this delay, which the EventSource waits
            # before reconnecting (with Last-Event-ID, so it resumes from the version it holds).
            drained.append(retry_after_ms)
            subscriber.close()

        subscriber.abort = abort
        subscriber.reconnect = reconnect
        metrics.SSE_STREAMS_OPEN.inc()
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n"
            while not subscriber.closed:
                frame = await subscriber.next_frame(timeout=heartbeat)
                if frame is None and subscriber.closed:
                    break
                subscriber.sending()
                yield frame if frame is not None else ": heartbeat\n\n"
                subscriber.sent()
            if drained:
                yield f"retry: {drained[0]}\n\n"
        finally:
            metrics.SSE_STREAMS_OPEN.dec()

    # From the first watch until the response owns the subscriber, any failure detaches it here:
    # otherwise the hub and the broker would keep it, and its channels, for the process's life.
    try:
        hub.admit(subscriber)
        entries = await subscribe(hub, subscriber)
        hub.attach(subscriber)
        current = [e for e in entries if resume_from is None or e["version"] > resume_from]
        if current or resume_from is None or len(subscriber.order_ids) != 1:
            subscriber.send_snapshot(entries)
        else:
            subscriber.release_events()
        return EventStream(stream(), release=lambda: hub.detach(subscriber))
    except BaseException:
        await hub.detach(subscriber)
        raise


async def open_menu_stream(feed: CatalogFeed, store_id: str, heartbeat_seconds: float) -> EventStream | None:
    """One store's menu: a `menu` event now and after every change (each the whole menu, its
    `id` the catalog revision); None when there is no such store."""
    watcher = await feed.watch(store_id)
    if watcher is None:
        return None

    async def stream() -> AsyncIterator[str]:
        metrics.SSE_STREAMS_OPEN.inc()
        try:
            yield f"retry: {RETRY_MILLISECONDS}\n\n"
            while not watcher.closed:
                payload = await watcher.next(heartbeat_seconds)
                if payload is None:
                    yield ": heartbeat\n\n"
                else:
                    yield f"event: menu\nid: {watcher.revision}\ndata: {payload.decode()}\n\n"
        finally:
            metrics.SSE_STREAMS_OPEN.dec()

    return EventStream(stream(), release=lambda: feed.unwatch(watcher))
