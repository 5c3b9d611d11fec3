"""An order change as the hub fans it out: the broker's message with its two audiences' frames."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from server.services.changes import ChangeMessage


@dataclass(slots=True)
class OrderChange(ChangeMessage):
    """One decoded broker message; its frames are serialised at most once per process."""

    _customer_frame: str | None = None
    _staff_frame: str | None = None
    _wire: dict[bool, bytes] | None = None
    _rendered: dict[Any, str] | None = None

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

    def rendered(self, key: Any, build: Callable[[], str]) -> str:
        """Another transport's text of this change (an event stream's), built once per process and
        `key` (its format and audience), like the frames above."""
        if self._rendered is None:
            self._rendered = {}
        text = self._rendered.get(key)
        if text is None:
            text = self._rendered[key] = build()
        return text

    def _encode(self, order: dict[str, Any]) -> str:
        return orjson.dumps({"type": "order", "event": self.event, "version": self.version,
                             "order": order}).decode()
