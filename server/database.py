"""The database of one process: MongoDB (the one at `MONGODB_URL`, or the embedded nx-27017)
connected with the driver options every write relies on, and Beanie initialised on it."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import unquote_plus

import pymongo
from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.errors import ConfigurationError as PyMongoConfigurationError
from pymongo.errors import OperationFailure, PyMongoError

from server.config import ConfigurationError, Settings, ensure_data_dir
from server.embedded_mongo import EmbeddedMongo
from server.metrics import COMMAND_COUNTER
from server.models import DOCUMENT_MODELS
from server.services.outage import UNREACHABLE

CLIENT_CLOSE_SECONDS = 1.0
EMBEDDED_STOP_SECONDS = 2.0

# The driver's documents are plain dicts: Beanie and the services shape them.
MongoClient = AsyncMongoClient[dict[str, Any]]


def public_mongodb_url(url: str) -> str:
    """The URL without user, password or options (which may hold secrets), for messages."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return "the configured URL"
    # Credentials end at the last '@' (a careless unescaped '@' in a password included).
    hosts_and_path = rest.rpartition("@")[2].split("?", 1)[0]
    return f"{scheme}://{hosts_and_path}"


def without_credentials(text: str, url: str) -> str:
    """`text` with any user name or password from `url` blanked out, however the driver quoted it."""
    userinfo = url.partition("://")[2].rpartition("@")[0]
    for secret in {part for piece in userinfo.split(":", 1) for part in (piece, unquote_plus(piece))}:
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def _reason(exc: Exception, url: str) -> str:
    """The driver's first clause, without the topology dump after it or credentials from `url`."""
    text = str(exc) or type(exc).__name__
    for cut in (" (configured timeouts", ", Timeout:", ", Topology Description:"):
        text = text.split(cut, 1)[0]
    return without_credentials(text.rstrip(". "), url)


async def close_client(client: MongoClient) -> None:
    # `close()` ends server sessions on the server; with the server gone that would wait for
    # a server selection, and nothing useful is lost by not waiting.
    try:
        await asyncio.wait_for(client.close(), CLIENT_CLOSE_SECONDS)
    except (TimeoutError, PyMongoError):
        pass


async def _reach(client: MongoClient, url: str, settings: Settings) -> None:
    """Ping until the database answers or the start-up budget is spent; then one clear error."""
    deadline = time.monotonic() + settings.mongodb_startup_timeout_seconds
    while True:
        remaining = deadline - time.monotonic()
        try:
            with pymongo.timeout(max(remaining, 0.1)):
                await client.admin.command("ping")
            return
        except UNREACHABLE as exc:
            if time.monotonic() < deadline:
                # A server that is only slow to answer its first hello gets the whole budget.
                await asyncio.sleep(0.1)
                continue
            raise ConfigurationError(f"Cannot reach MongoDB at {public_mongodb_url(url)}: "
                                     f"{_reason(exc, url)}. Check MONGODB_URL.") from None
        except PyMongoError as exc:  # authentication and other refusals: waiting will not help
            raise ConfigurationError(f"MongoDB at {public_mongodb_url(url)} refused the connection: "
                                     f"{_reason(exc, url)}. Check MONGODB_URL.") from None


def _refuses_database_name(exc: OperationFailure) -> bool:
    # MongoDB says InvalidNamespace (73); nx-27017, stricter than the rule the settings check, only says so in words.
    return exc.code == 73 or str((exc.details or {}).get("errmsg", "")).startswith("Invalid database name")


def client_options(settings: Settings) -> dict[str, Any]:
    """Driver timeouts from the settings, and how writes and reads meet a replica set: they win
    over the same options in the URL.

    An order change is acknowledged once a majority of the set holds it (a failover cannot roll
    back a change a client was shown), a write interrupted by a failover is retried once on the
    new primary (order updates are compare-and-set on the version, so a retry never applies twice),
    and state is read from the primary, never a lagging secondary. nx-27017 accepts all three."""
    return {
        "serverSelectionTimeoutMS": int(settings.mongodb_server_selection_timeout_seconds * 1000),
        "connectTimeoutMS": int(settings.mongodb_connect_timeout_seconds * 1000),
        "socketTimeoutMS": int(settings.mongodb_socket_timeout_seconds * 1000),
        "w": "majority",
        "retryWrites": True,
        "readPreference": "primary",
    }


async def connect_database(settings: Settings) -> tuple[MongoClient, EmbeddedMongo | None]:
    """Connect to `MONGODB_URL`, or start the embedded nx-27017 when it is unset; init Beanie.

    Raises `ConfigurationError` (one line, no credentials) when the database cannot be used.
    """
    embedded = None
    url = settings.mongodb_url
    if not url:
        ensure_data_dir(settings)
        embedded = EmbeddedMongo(settings.data_dir)
        # Started from this (the main) thread: the kernel's parent-death signal follows the
        # thread that forked, and the main thread lives as long as the server.
        try:
            url = embedded.start()
        except ConfigurationError:
            raise  # already one line for the operator (the data directory is in use)
        except RuntimeError as exc:
            raise ConfigurationError(f"The embedded MongoDB did not start: {exc}.") from None
    try:
        client: MongoClient = AsyncMongoClient(url, tz_aware=True, event_listeners=[COMMAND_COUNTER],
                                                    **client_options(settings))
    except (PyMongoConfigurationError, ValueError) as exc:  # ValueError: a port that is not a number
        if embedded:
            embedded.stop()
        raise ConfigurationError(f"MONGODB_URL is not usable: {_reason(exc, url)}. Check MONGODB_URL.") from None
    try:
        await _reach(client, url, settings)
        database = client.get_default_database(default=settings.mongodb_database)
        try:
            await init_beanie(database=database, document_models=DOCUMENT_MODELS)
        except OperationFailure as exc:
            if not _refuses_database_name(exc):
                raise
            raise ConfigurationError(f"MongoDB refuses the database name {database.name!r}; use letters, digits, "
                                     "_ and - in MONGODB_DATABASE (or MONGODB_URL's path).") from None
    except BaseException:
        await close_client(client)
        if embedded:
            embedded.stop(EMBEDDED_STOP_SECONDS)
        raise
    return client, embedded


def background_client(settings: Settings, url: str, pool_size: int) -> MongoClient:
    """Another client on the same database for a background part (the deadline enforcer), with a
    pool of its own: requests holding every connection of theirs cannot make it wait."""
    return AsyncMongoClient(url, tz_aware=True, event_listeners=[COMMAND_COUNTER], maxPoolSize=pool_size,
                            **client_options(settings))


async def disconnect_database(client: MongoClient, embedded: EmbeddedMongo | None) -> None:
    """Close the client, then stop the embedded server if there is one; each within its bound."""
    await close_client(client)
    if embedded is not None:
        embedded.stop(EMBEDDED_STOP_SECONDS)
