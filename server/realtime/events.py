"""The message published once per order change, and its two audiences' frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from server.domain.clock import iso_z
from server.models import Order
from server.views import event_order, kitchen_fields


def order_channel(order_id: str) -> str:
    return f"order:{order_id}"


def store_channel(store_id: str) -> str:
    return f"store:{store_id}"


def encode_change(order: Order, event: str) -> bytes:
    """What the broker carries: the public event, the kitchen extras, and for routing and
    caching the owner and the next deadline (neither is ever sent to a client)."""
    return orjson.dumps({
        "event": event,
        "order": event_order(order),
        "kitchen": kitchen_fields(order),
        "userId": str(order.user_id),
        "nextDeadlineAt": iso_z(order.next_deadline_at),
    })


@dataclass(slots=True)
class OrderChange:
    """One decoded broker message; its frames are serialised at most once per process."""

    event: str
    order: dict[str, Any]
    kitchen: dict[str, Any]
    user_id: str
    next_deadline_at: str | None = None
    _customer_frame: str | None = None
    _staff_frame: str | None = None
    _wire: dict[bool, bytes] | None = None
    # Read for every subscriber of a fan-out: plain attributes, not properties over the dict.
    order_id: str = field(init=False)
    version: int = field(init=False)

    def __post_init__(self) -> None:
        self.order_id = self.order["id"]
        self.version = self.order["version"]

    @classmethod
    def decode(cls, payload: bytes) -> OrderChange:
        data = orjson.loads(payload)
        return cls(event=data["event"], order=data["order"], kitchen=data["kitchen"], user_id=data["userId"],
                   next_deadline_at=data.get("nextDeadlineAt"))

    @property
    def store_id(self) -> str:
        return self.order["storeId"]

    def frame(self, sees_kitchen: bool) -> str:
        """The `{"type": "order", ...}` frame for customers or for store staff, built once."""
        if sees_kitchen:
            if self._staff_frame is None:
                self._staff_frame = self._encode({**self.order, **self.kitchen})
            return self._staff_frame
        if self._customer_frame is None:
            self._customer_frame = self._encode(self.order)
        return self._customer_frame

    def wire(self, sees_kitchen: bool) -> bytes:
        """The whole WebSocket text frame, as bytes on the wire: server frames are unmasked and
        uncompressed, so one copy serves every socket of the process."""
        if self._wire is None:
            self._wire = {}
        frame = self._wire.get(sees_kitchen)
        if frame is None:
            payload = self.frame(sees_kitchen).encode()
            frame = self._wire[sees_kitchen] = WsFrame(Opcode.TEXT, payload).serialize(mask=False)
        return frame

    def _encode(self, order: dict[str, Any]) -> str:
        return orjson.dumps({"type": "order", "event": self.event, "version": self.version,
                             "order": order}).decode()
