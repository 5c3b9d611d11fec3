"""Partner API clients (`/v1`): which client ids may call."""

from __future__ import annotations

import secrets

from beanie import SortDirection

from server.domain.clock import utcnow
from server.models import ClientApp

MAX_CLIENT_ID_LENGTH = 100


async def client_is_active(client_id: str) -> bool:
    """Read on every request (one unique-index lookup), so `orderpulse client revoke` takes
    effect at once in every server process."""
    if len(client_id) > MAX_CLIENT_ID_LENGTH:
        return False
    return await ClientApp.find_one({"client_id": client_id, "is_active": True}) is not None


async def create_client(name: str) -> ClientApp:
    """Register a partner; its generated id is what it sends as `X-Client-ID`."""
    client = ClientApp(client_id="opc_" + secrets.token_urlsafe(18), name=name, created_at=utcnow())
    return await client.insert()


async def list_clients() -> list[ClientApp]:
    """Every partner client, active ones first, then newest first."""
    newest_active_first = [("is_active", SortDirection.DESCENDING), ("_id", SortDirection.DESCENDING)]
    return await ClientApp.find({}).sort(newest_active_first).limit(500).to_list()


async def revoke_client(client_id: str) -> ClientApp | None:
    """Deactivate a client id at once on every process; None when there is no such client.
    A client already revoked keeps its first revocation time."""
    collection = ClientApp.get_pymongo_collection()
    await collection.update_one({"client_id": client_id, "is_active": True},
                                {"$set": {"is_active": False, "revoked_at": utcnow()}})
    return await ClientApp.find_one({"client_id": client_id})
