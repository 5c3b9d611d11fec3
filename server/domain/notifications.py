"""Which moments of an order reach the customer's devices, and in what words (issue 12)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from server.domain import messages
from server.domain.lifecycle import OrderStatus


class Moment(StrEnum):
    ACCEPTED = "accepted"
    READY = "ready"
    PICKUP_REMINDER = "pickup_reminder"
    CANCELLED = "cancelled"
    # A ready order put back to preparing (a mistaken bump), and ready again after that.
    READY_UNDONE = "ready_undone"
    READY_AGAIN = "ready_again"


_BY_STATUS = {OrderStatus.ACCEPTED: Moment.ACCEPTED, OrderStatus.READY: Moment.READY,
              OrderStatus.CANCELLED: Moment.CANCELLED}


def moment_of(status: str, ready_undos: int = 0) -> Moment | None:
    """The moment an order in `status` has reached, if customers are told of it; `ready_undos`:
    how often its ready was undone (then preparing means "not ready after all", and ready again
    is a moment of its own, since the first ready was already told)."""
    if ready_undos and status == OrderStatus.PROCESSING:
        return Moment.READY_UNDONE
    if ready_undos and status == OrderStatus.READY:
        return Moment.READY_AGAIN
    return _BY_STATUS.get(OrderStatus(status)) if status in OrderStatus._value2member_map_ else None


def reminder_due(ready_expires_at: datetime | None, now: datetime, before_minutes: float) -> bool:
    """True once a ready order is within `before_minutes` of becoming a no-show (and not past it)."""
    if ready_expires_at is None:
        return False
    left = (ready_expires_at - now).total_seconds()
    return 0 < left <= before_minutes * 60


@dataclass(frozen=True)
class Notification:
    title: str
    body: str
    url: str
    tag: str
    moment: Moment

    def payload(self) -> dict[str, str]:
        return {"title": self.title, "body": self.body, "url": self.url, "tag": self.tag,
                "moment": self.moment.value}


def notification(moment: Moment, *, order_id: str, order_number: str, store_name: str,
                 cancellation_reason: str | None = None, ready_expires_at: datetime | None = None,
                 now: datetime | None = None) -> Notification:
    """The words for one moment: the store and the order number, never the pickup code."""
    names = {"order_number": order_number, "store_name": store_name}
    if moment is Moment.ACCEPTED:
        title, body = messages.PUSH_ACCEPTED_TITLE, messages.PUSH_ACCEPTED_BODY
    elif moment in (Moment.READY, Moment.READY_AGAIN):
        title, body = messages.PUSH_READY_TITLE, messages.PUSH_READY_BODY
    elif moment is Moment.READY_UNDONE:
        title, body = messages.PUSH_READY_UNDONE_TITLE, messages.PUSH_READY_UNDONE_BODY
    elif moment is Moment.PICKUP_REMINDER:
        left = (ready_expires_at - now).total_seconds() if ready_expires_at and now else 0
        names["minutes"] = str(max(1, math.ceil(left / 60)))
        title, body = messages.PUSH_REMINDER_TITLE, messages.PUSH_REMINDER_BODY
    else:
        title = messages.PUSH_CANCELLED_TITLE
        body = messages.PUSH_CANCELLED_BODY.get(cancellation_reason or "", messages.PUSH_CANCELLED_FALLBACK)
    # One tag per order: a newer notice of the same order replaces the older one on the device.
    return Notification(title.format(**names), body.format(**names), f"/track/{order_id}", f"order-{order_id}", moment)
