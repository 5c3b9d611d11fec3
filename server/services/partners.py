"""Partner API clients (`/v1`): which client ids may call."""

from __future__ import annotations

from server.models import ClientApp

MAX_CLIENT_ID_LENGTH = 100


async def client_is_active(client_id: str) -> bool:
    """Read on every request (one unique-index lookup), so `orderpulse client revoke` takes
    effect at once in every server process."""
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        return False
    return await ClientApp.find_one({"client_id": client_id, "is_active": True}) is not None
