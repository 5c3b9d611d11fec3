"""How the database fails, in one place: unreachable (no answer in time) or out of storage (it
answers but refuses to write), and one log line when a background loop meets an outage and one
when it ends: a retry every second during an outage must not write a traceback every second."""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import ConnectionFailure, ExecutionTimeout, OperationFailure

from server import metrics

# What the driver raises when MongoDB is not there in time: a closed or refused connection, no
# server within the selection timeout, a socket or operation timeout (all ConnectionFailure), or
# a server-side time limit. Any other PyMongoError is a bug, unless it is a storage failure below.
UNREACHABLE: tuple[type[Exception], ...] = (ConnectionFailure, ExecutionTimeout)

# A write refused for lack of storage: MongoDB's OutOfDiskSpace code, or the words the engines use
# (WiredTiger's ENOSPC/EROFS text, SQLite's under nx-27017, which answers code 8, UnknownError).
STORAGE_FAILURE_CODES = frozenset({14031})
_STORAGE_FAILURE_TEXT = re.compile(
    r"disk is full|no space left|out of disk space|read-only file system|readonly database|disk i/o error", re.I)


class StorageFailure(Exception):
    """The database answered but did not store a write: the same outage as a refused write, seen
    where the engine says nothing (nx-27017 answers a `find_one_and_update` or `find_one_and_delete`
    whose write failed with no document at all, as if nothing had matched)."""


# The exceptions `storage_failure_reason` looks into: every refusal the database words itself.
MAYBE_STORAGE_FAILURE: tuple[type[Exception], ...] = (OperationFailure, StorageFailure)


def storage_failure_reason(exc: BaseException) -> str | None:
    """The engine's words when `exc` is a write refused for lack of storage; None for anything else."""
    if isinstance(exc, StorageFailure):
        return str(exc)
    if not isinstance(exc, OperationFailure):
        return None
    details = exc.details or {}
    # A bulk write or a write concern error carries its cause one level down, in fewer words.
    nested = [*details.get("writeErrors", ()), details.get("writeConcernError") or {}]
    texts = [str(error.get("errmsg", "")) for error in nested] + [str(details.get("errmsg") or exc)]
    codes = {exc.code, *(error.get("code") for error in nested)}
    if codes & STORAGE_FAILURE_CODES or any(_STORAGE_FAILURE_TEXT.search(text) for text in texts):
        return next((text for text in texts if _STORAGE_FAILURE_TEXT.search(text)), texts[-1])
    return None


# What a background loop hands to `OutageLog.failed`, which tells an outage from a bug.
MAYBE_OUTAGE: tuple[type[Exception], ...] = (*UNREACHABLE, *MAYBE_STORAGE_FAILURE)

# A collection read and written as the driver's plain documents (Beanie's models are not involved).
RawCollection = AsyncCollection[dict[str, Any]]


def upserted(document: dict[str, Any] | None) -> dict[str, Any]:
    """The document an upserting `find_one_and_update` returns: always one, unless it was not stored."""
    if document is None:
        raise StorageFailure("an upsert was acknowledged without its document")
    return document


async def refuse_unwritten(collection: RawCollection, query: dict[str, Any]) -> None:
    """After a compare-and-set that returned nothing: if the document still matches its condition,
    the write was refused (a lost race no longer matches), so it is a storage failure, not a conflict."""
    if await collection.find_one(query, {"_id": 1}) is not None:
        raise StorageFailure("a write whose condition held was not applied")


class StorageHealth:
    """Whether the database last accepted or refused a write, for `/readyz` and the log: one warning
    when writes start failing (then at most one per `log_interval`), one line when they work again."""

    def __init__(self, log: logging.Logger, log_interval: float = 60.0) -> None:
        self._log = log
        self._log_interval = log_interval
        self._last_line = float("-inf")
        self.reason: str | None = None

    def failed(self, reason: str, where: str) -> None:
        first = self.reason is None
        self.reason = reason
        metrics.STORAGE_REFUSING_WRITES.set(1)
        if first or time.monotonic() - self._last_line >= self._log_interval:
            self._last_line = time.monotonic()
            self._log.warning("database storage refuses writes (%s, on %s): answering 503 until it accepts "
                              "them again", reason, where)

    def succeeded(self) -> None:
        if self.reason is not None:
            self.reason = None
            metrics.STORAGE_REFUSING_WRITES.set(0)
            self._log.warning("database storage accepts writes again")


class OutageLog:
    def __init__(self, log: logging.Logger, task: str) -> None:
        self._log = log
        self._task = task
        self.down = False

    def failed(self, exc: BaseException, retry_seconds: float) -> None:
        storage = storage_failure_reason(exc)
        if storage is None and not isinstance(exc, UNREACHABLE):
            self._log.error("%s failed; retrying in %.0f s", self._task, retry_seconds, exc_info=exc)
            return
        if not self.down:
            self.down = True
            what = f"database storage refuses writes ({storage})" if storage else \
                f"database unreachable ({type(exc).__name__})"
            self._log.warning("%s failed: %s; retrying every %.0f s", self._task, what, retry_seconds)

    def succeeded(self) -> None:
        if self.down:
            self.down = False
            self._log.warning("%s resumed: the database answers again", self._task)
