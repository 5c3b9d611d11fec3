from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.models.base import UtcDocument


class PushSubscription(UtcDocument):
    """One browser's Web Push subscription (W3C Push API), owned by the user who made it."""

    user_id: str  # hex, as on orders
    endpoint: str
    p256dh: str  # the browser's P-256 public key, base64url
    auth: str  # the browser's 16-byte auth secret, base64url
    created_at: datetime
    # When the device last registered, in epoch milliseconds (an integer sorts the same on MongoDB
    # and nx-27017, whose `$set` stores datetimes as text): past the per-account cap the least
    # recent goes. 0 for subscriptions stored before it was kept.
    registered_ms: int = 0

    class Settings:
        name = "push_subscriptions"
        keep_nulls = False
        indexes = [
            IndexModel([("endpoint", ASCENDING)], name="endpoint_unique", unique=True),
            IndexModel([("user_id", ASCENDING)], name="by_user"),
        ]


class PushDelivery(UtcDocument):
    """The claim on one notification: inserting it is the compare-and-set that makes each moment
    of an order reach each subscription once, however many server processes saw the change."""

    subscription_id: str
    order_id: str
    kind: str  # accepted, ready, cancelled, pickup_reminder
    status: str  # sending, sent, gone, failed
    attempts: int = 0
    claimed_at: datetime
    finished_at: datetime | None = None

    class Settings:
        name = "push_deliveries"
        keep_nulls = False
        indexes = [
            IndexModel([("subscription_id", ASCENDING), ("order_id", ASCENDING), ("kind", ASCENDING)],
                       name="one_per_moment", unique=True),
            IndexModel([("order_id", ASCENDING)], name="by_order"),
        ]
