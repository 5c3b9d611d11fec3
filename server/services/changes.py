"""The message published once per order change, as the broker carries it between processes.

The services write it (publishing) and read it (the poll snapshots); the real-time adapters add
their frames on top (`server.realtime.events`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self

import orjson

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
class ChangeMessage:
    """One decoded broker message."""

    event: str
    order: dict[str, Any]
    kitchen: dict[str, Any]
    user_id: str
    next_deadline_at: str | None = None
    # Read for every subscriber of a fan-out: plain attributes, not properties over the dict.
    order_id: str = field(init=False)
    version: int = field(init=False)

    def __post_init__(self) -> None:
        self.order_id = self.order["id"]
        self.version = self.order["version"]

    @classmethod
    def decode(cls, payload: bytes) -> Self:
        data = orjson.loads(payload)
        return cls(event=data["event"], order=data["order"], kitchen=data["kitchen"], user_id=data["userId"],
                   next_deadline_at=data.get("nextDeadlineAt"))

    @property
    def store_id(self) -> str:
        store_id: str = self.order["storeId"]  # the decoded JSON's values are untyped
        return store_id


ESTIMATES_PREFIX = b'{"estimates":'


def encode_estimates(store_id: str, estimates: list[dict[str, Any]]) -> bytes:
    """Ready-time estimates that moved, on the channels of the orders they are of (never a change:
    no version, nothing cached); `estimates` is `[{id, estimatedReadyAt}]`."""
    return orjson.dumps({"estimates": estimates, "storeId": store_id})


def is_estimates(payload: bytes) -> bool:
    return payload.startswith(ESTIMATES_PREFIX)


def customer_channel(user_id: str) -> str:
    """Every change of one customer's orders, new ones included ("My orders")."""
    return f"customer:{user_id}"


def catalog_channel(store_id: str) -> str:
    """A store's details or menu changed: carries the whole menu (`server.services.catalog`)."""
    return f"catalog:{store_id}"
