"""The `/ws` frame protocol without sockets: client frames parsed and checked, server frames rendered.

REALTIME.md is the contract. A refused frame is answered with an `error` frame and the socket
stays open; what closes a socket (size, rate, tokens) is the session's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from server.domain import messages
from server.domain.errors import OrderPulseError

if TYPE_CHECKING:
    from server.realtime.events import OrderChange

CLOSE_UNAUTHORISED = 4401
CLOSE_TOO_BIG = 1009
CLOSE_POLICY = 1008
CLOSE_SERVICE_RESTART = 1012  # the process is stopping: reconnect after the `reconnect` frame's retryAfterMs
CLOSE_TOO_MANY = 4429  # the account has its most sockets and event streams open already
MAX_ORDER_IDS = 100


class FrameRefused(Exception):
    """A client frame the protocol does not allow; `frame_id` is echoed in the error frame."""

    def __init__(self, message: str, frame_id: Any = None, code: str = "bad_request") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.frame_id = frame_id


@dataclass(frozen=True, slots=True)
class ClientFrame:
    """One checked client frame: `ping`, `auth`, `subscribe` or `unsubscribe`, with what it names
    (`orderIds`, `storeId`, or `mine`)."""

    type: str
    id: Any = None
    order_ids: list[str] | None = None
    store_id: str | None = None
    mine: bool = False  # the caller's own orders, new ones included
    token: str | None = None


def parse(text: str | None) -> ClientFrame:
    """The client frame in `text` (None for a binary frame); FrameRefused when it is not one."""
    if text is None:
        raise FrameRefused(messages.WS_FRAME_NOT_TEXT)
    try:
        frame = orjson.loads(text)
    except orjson.JSONDecodeError:
        raise FrameRefused(messages.WS_FRAME_NOT_OBJECT) from None
    if not isinstance(frame, dict):
        raise FrameRefused(messages.WS_FRAME_NOT_OBJECT)
    frame_id, kind = frame.get("id"), frame.get("type")
    if kind == "ping":
        return ClientFrame("ping", frame_id)
    if kind in ("subscribe", "unsubscribe"):
        if "mine" in frame:
            if frame["mine"] is not True or "orderIds" in frame or "storeId" in frame:
                raise FrameRefused(messages.WS_MINE_ALONE, frame_id)
            return ClientFrame(kind, frame_id, mine=True)
        order_ids, store_id = _targets(frame, frame_id)
        return ClientFrame(kind, frame_id, order_ids=order_ids, store_id=store_id)
    if kind == "auth":
        token = frame.get("token")
        return ClientFrame("auth", frame_id, token=token if isinstance(token, str) and token else None)
    raise FrameRefused(messages.WS_FRAME_UNKNOWN, frame_id)


def _targets(frame: dict[str, Any], frame_id: Any) -> tuple[list[str] | None, str | None]:
    order_ids, store_id = frame.get("orderIds"), frame.get("storeId")
    if (order_ids is None) == (store_id is None):
        raise FrameRefused(messages.WS_TARGET_REQUIRED, frame_id)
    if order_ids is not None:
        if (not isinstance(order_ids, list) or not order_ids or len(order_ids) > MAX_ORDER_IDS
                or not all(isinstance(o, str) for o in order_ids)):
            raise FrameRefused(messages.WS_ORDER_IDS_INVALID, frame_id)
        return list(dict.fromkeys(order_ids)), None  # each order once, in the order asked
    if not isinstance(store_id, str):
        raise FrameRefused(messages.STORE_ID_INVALID, frame_id)
    return None, store_id


def is_too_big(frame: str | bytes, limit: int) -> bool:
    """Whether a frame is over the size limit (counted in bytes, as on the wire)."""
    return len(frame.encode() if isinstance(frame, str) else frame) > limit


# --- server frames --------------------------------------------------------------------------------

def _render(body: dict[str, Any], frame_id: Any) -> str:
    if frame_id is not None:
        body["id"] = frame_id
    return orjson.dumps(body).decode()


def order_event(change: OrderChange, sees_kitchen: bool) -> str:
    """`{"type": "order", ...}`, built once per process and audience by the change itself."""
    return change.frame(sees_kitchen)


def snapshot(entries: list[dict[str, Any]], frame_id: Any = None) -> str:
    return _render({"type": "snapshot", "orders": entries}, frame_id)


def estimates(store_id: str, orders: list[dict[str, Any]]) -> str:
    """`{"type": "eta", ...}`: ready-time estimates that moved (REALTIME.md)."""
    return _render({"type": "eta", "storeId": store_id, "orders": orders}, None)


def error(code: str, message: str, frame_id: Any = None) -> str:
    return _render({"type": "error", "code": code, "message": message}, frame_id)


def refused(refusal: OrderPulseError, frame_id: Any = None) -> str:
    """The error frame of a refused subscribe: the refusal's stable code (`forbidden`, `not_found`,
    `rate_limited`: REALTIME.md) and its message."""
    return error(refusal.code, refusal.message, frame_id)


def pong(frame_id: Any = None) -> str:
    return _render({"type": "pong"}, frame_id)


def authenticated(frame_id: Any = None) -> str:
    return _render({"type": "authenticated"}, frame_id)


def reconnect(retry_after_ms: int) -> str:
    """`{"type": "reconnect", "retryAfterMs": ...}`: sent before closing with 1012 on a drain."""
    return _render({"type": "reconnect", "retryAfterMs": retry_after_ms}, None)
