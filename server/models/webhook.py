"""Partner webhooks (README, "Webhooks"): the endpoints partners registered and every delivery made to them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from pymongo import ASCENDING, DESCENDING, IndexModel

from server.models.base import UtcDocument


class SigningSecret(BaseModel):
    """One `whsec_…` secret; a rotated-out one signs beside the new one until `expires_at`."""

    secret: str
    created_at: datetime
    expires_at: datetime | None = None


class WebhookEndpoint(UtcDocument):
    """A URL that receives the events of one partner client's orders."""

    endpoint_id: str  # `ep_…`, what the CLI, the admin API and the console name
    client_id: str
    url: str
    events: list[str] = []  # empty: every event type
    secrets: list[SigningSecret]
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    created_at: datetime

    class Settings:
        name = "webhook_endpoints"
        keep_nulls = False
        indexes = [
            IndexModel([("endpoint_id", ASCENDING)], name="endpoint_id_unique", unique=True),
            IndexModel([("client_id", ASCENDING)], name="client_endpoints"),
        ]


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None = None
    latency_ms: float
    error: str | None = None


class WebhookDelivery(UtcDocument):
    """One event for one endpoint, with every attempt made to deliver it.

    `attempt_count` is the compare-and-set of a claim: one attempt at a time across processes.
    `next_attempt_at` is when it may next be claimed: the next try while pending, the end of the
    claim while delivering (a process that died mid-attempt leaves it to be claimed again).
    """

    event_id: str  # `msg_…`, the `webhook-id` of every attempt and replay of this event to this endpoint
    endpoint_id: str
    client_id: str
    order_id: str
    version: int
    type: str
    payload: str  # the exact JSON body sent
    status: str = "pending"  # pending, delivering, succeeded, failed
    attempt_count: int = 0
    attempts: list[DeliveryAttempt] = []
    retry_base: int = 0  # attempts made before the last replay: the retry schedule starts again after them
    next_attempt_at: datetime
    created_at: datetime
    finished_at: datetime | None = None

    class Settings:
        name = "webhook_deliveries"
        keep_nulls = False
        indexes = [
            # One delivery per event and endpoint, however many relays see the event (idempotent).
            IndexModel([("endpoint_id", ASCENDING), ("order_id", ASCENDING), ("version", ASCENDING)],
                       name="endpoint_order_version_unique", unique=True),
            IndexModel([("event_id", ASCENDING)], name="event_id"),
            # The worker's query: an endpoint's due deliveries.
            IndexModel([("endpoint_id", ASCENDING), ("status", ASCENDING), ("next_attempt_at", ASCENDING)],
                       name="endpoint_due"),
            # The delivery log and replay by time range.
            IndexModel([("endpoint_id", ASCENDING), ("created_at", DESCENDING)], name="endpoint_log"),
        ]
