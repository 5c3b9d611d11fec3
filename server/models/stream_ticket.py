from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from server.models.base import UtcDocument


class StreamTicket(UtcDocument):
    """A short-lived, single-use ticket for an event stream, so a browser's `EventSource` (which
    cannot send headers) never puts an access token in a URL. Only its hash is stored."""

    ticket_hash: str
    user_id: str
    token_expires_at: float  # the issuing access token's expiry, epoch seconds
    expires_at: datetime
    created_at: datetime

    class Settings:
        name = "stream_tickets"
        keep_nulls = False
        indexes = [
            IndexModel([("ticket_hash", ASCENDING)], name="ticket_hash_unique", unique=True),
            # MongoDB removes tickets nobody redeemed; redeeming deletes one at once.
            IndexModel([("expires_at", ASCENDING)], name="expires_ttl", expireAfterSeconds=0),
        ]
