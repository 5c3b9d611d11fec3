"""WebSocket subscribers (websockets' asyncio client) speaking the REALTIME.md frames."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Callable
from urllib.parse import quote

import orjson
from websockets.asyncio.client import ClientConnection, connect

# The server takes at most 100 ids per subscribe frame and 1,000 orders per connection.
IDS_PER_FRAME = 100
ORDERS_PER_SOCKET = 1000
# The server closes sockets sending more than 20 frames a second.
FRAME_SPACING_SECONDS = 0.06


class SubscribeError(RuntimeError):
    """The server answered a subscribe with an error frame or closed the socket."""


async def open_socket(ws_base: str, token: str, *, compression: bool = False,
                      timeout: float = 30.0) -> ClientConnection:
    """Open /ws with the token in the query string; client pings off (the server pings)."""
    return await connect(
        f"{ws_base}/ws?token={quote(token)}",
        compression="deflate" if compression else None,
        open_timeout=timeout,
        ping_interval=None,
        close_timeout=2,
        max_size=None,
        max_queue=None,
    )


async def subscribe(socket: ClientConnection, *, order_ids: list[str] | None = None,
                    store_id: str | None = None, timeout: float = 30.0,
                    on_frame: Callable[[dict[str, Any], float], None] | None = None) -> int:
    """Subscribe and wait for each snapshot; returns the number of orders in the snapshots.

    Frames other than the awaited snapshot go to `on_frame` (with their receipt time).
    """
    frames: list[dict[str, Any]] = []
    if store_id is not None:
        frames.append({"type": "subscribe", "id": "s0", "storeId": store_id})
    ids = order_ids or []
    for i in range(0, len(ids), IDS_PER_FRAME):
        frames.append({"type": "subscribe", "id": f"s{len(frames)}", "orderIds": ids[i:i + IDS_PER_FRAME]})
    seen = 0
    for index, frame in enumerate(frames):
        if index:
            await asyncio.sleep(FRAME_SPACING_SECONDS)
        await socket.send(orjson.dumps(frame).decode())
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SubscribeError("no snapshot within the timeout")
            raw = await asyncio.wait_for(socket.recv(), remaining)
            message = orjson.loads(raw)
            kind = message.get("type")
            if kind == "snapshot":
                seen += len(message.get("orders") or [])
                break
            if kind == "error":
                raise SubscribeError(f"{message.get('code')}: {message.get('message')}")
            if on_frame:
                on_frame(message, time.monotonic())
    return seen


def event_key(message: dict[str, Any]) -> str | None:
    """The key the bench matches API calls to events with: order id and the status it entered."""
    if message.get("type") != "order":
        return None
    order = message.get("order") or {}
    return f"{order.get('id')}:{order.get('orderStatus')}"
