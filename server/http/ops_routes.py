"""Operations: liveness, readiness, Prometheus metrics, and the answer
every route gives while MongoDB cannot be reached or cannot store a write."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.errors import Unavailable
from server.domain.token_bucket import TokenBuckets, retry_after
from server.http.errors import rest_response
from server.http.contract import BOOL, STR, ApiRoute, Operation, answer, obj
from server.http import context
from server.http.responses import JSONResponse, failure
from server.services.outage import MAYBE_STORAGE_FAILURE, UNREACHABLE, storage_failure_reason

if TYPE_CHECKING:
    from server.runtime import Runtime

log = logging.getLogger("orderpulse")

RETRY_AFTER_SECONDS = 2
# Freeing disk space takes an operator a while; a client retrying every 2 s would only add load.
STORAGE_RETRY_AFTER_SECONDS = 10
OUTAGE_LOG_INTERVAL_SECONDS = 10.0
_last_outage_log = 0.0


def outage_refusal(request: Request, exc: Exception) -> Unavailable:
    """An unreachable database, or a write it could not store for lack of storage, as the `503`
    refusal with `Retry-After` that each API answers in its own shape. An unreachable database is
    one log line per 10 s, no traceback; a storage failure the warning line of `StorageHealth`.
    Any other refusal of a write is a bug: raised again for RequestEdge to log and answer 500."""
    global _last_outage_log
    if not isinstance(exc, UNREACHABLE):  # `ExecutionTimeout`, an `OperationFailure`, stays unreachable
        reason = storage_failure_reason(exc)
        if reason is None:
            raise exc
        context.runtime(request).storage.failed(reason, f"{request.method} {request.url.path}")
        return Unavailable(messages.STORAGE_UNAVAILABLE, retry_after=STORAGE_RETRY_AFTER_SECONDS)
    if time.monotonic() - _last_outage_log >= OUTAGE_LOG_INTERVAL_SECONDS:
        _last_outage_log = time.monotonic()
        log.warning("database unreachable (%s on %s %s): answering 503 until it is back",
                    type(exc).__name__, request.method, request.url.path)
    return Unavailable(messages.DATABASE_UNAVAILABLE, retry_after=RETRY_AFTER_SECONDS)


OUTAGES: tuple[type[Exception], ...] = UNREACHABLE + MAYBE_STORAGE_FAILURE


async def _database_outage(request: Request, exc: Exception) -> Response:
    return rest_response(outage_refusal(request, exc))


def database_outage_handlers() -> dict[type[Exception], object]:
    """The Starlette `exception_handlers` entries that turn an unreachable database, or one that
    cannot store a write, into a 503 in the `/api` shape (the partner routes answer their own)."""
    return dict.fromkeys(OUTAGES, _database_outage)


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


# Both answers are public and cost real work (a test write to MongoDB; rendering every metric, 0.5-2
# ms), so a flood of them is bounded per process: past this many a second (and a burst of twice
# that) a probe gets the last readiness answer again, and a scrape `429`. Probes and scrapes come
# every few seconds; the bound keeps a flood under ~5 % of a core.
CHECKS_PER_SECOND = 20


class _Bounded:
    """The last readiness answer and the budgets, one per app."""

    def __init__(self) -> None:
        self.readiness = TokenBuckets(rate=CHECKS_PER_SECOND, burst=2 * CHECKS_PER_SECOND, max_keys=1)
        self.scrapes = TokenBuckets(rate=CHECKS_PER_SECOND, burst=2 * CHECKS_PER_SECOND, max_keys=1)
        self.last_readiness: tuple[int, dict[str, Any]] | None = None
        self.checking: asyncio.Future[tuple[int, dict[str, Any]]] | None = None


def _bounded_state(request: Request) -> _Bounded:
    state = getattr(request.app.state, "ops_bounds", None)
    if state is None:
        state = request.app.state.ops_bounds = _Bounded()
    return state


async def readyz(request: Request) -> Response:
    bounds = _bounded_state(request)
    if bounds.checking is None:
        now = context.runtime(request).clock.monotonic()
        if bounds.last_readiness is not None and bounds.readiness.take("", now) is not None:
            status, body = bounds.last_readiness
            return JSONResponse(body, status_code=status)
        bounds.checking = asyncio.ensure_future(_readiness(context.runtime(request)))
        bounds.checking.add_done_callback(lambda _: setattr(bounds, "checking", None))
    # Probes arriving while a check runs share it.
    status, body = await asyncio.shield(bounds.checking)
    bounds.last_readiness = status, body
    return JSONResponse(body, status_code=status)


async def _readiness(runtime: Runtime) -> tuple[int, dict[str, Any]]:
    timeout = runtime.settings.readiness_timeout_seconds
    # The checks at once, each bounded: a probe must answer while a dependency hangs.
    (database, storage_problem), broker = await asyncio.gather(_database(runtime),
                                                               _bounded(runtime.broker.ping(), timeout))
    storage = database and storage_problem is None
    status = 200 if storage and broker else 503
    body = {"status": "ready" if status == 200 else "unavailable", "database": database, "storage": storage,
            "broker": broker}
    if database and storage_problem is not None:
        body["reason"] = messages.STORAGE_NOT_READY.format(reason=storage_problem)
    return status, body


async def _database(runtime: Runtime) -> tuple[bool, str | None]:
    """Whether MongoDB answers a ping and, once it does, why it does not store a small write (a
    full or read-only disk still answers pings)."""
    if not await runtime.database_ready():
        return False, None
    return True, await runtime.storage_problem()


async def _bounded(check: Awaitable[object], timeout: float) -> bool:
    try:
        return bool(await asyncio.wait_for(check, timeout))
    except TimeoutError:
        return False


async def metrics(request: Request) -> Response:
    wait = _bounded_state(request).scrapes.take("", context.runtime(request).clock.monotonic())
    if wait is not None:
        seconds = retry_after(wait)
        return failure(429, messages.SCRAPES_TOO_FAST.format(seconds=seconds), headers={"Retry-After": seconds})
    return Response(generate_latest(_registry()), media_type=CONTENT_TYPE_LATEST)


def _registry() -> CollectorRegistry:
    """This process's metrics; under a `--workers` supervisor (PROMETHEUS_MULTIPROC_DIR set), the
    whole host's, summed over every worker's files, whichever worker answers."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import REGISTRY

        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


READINESS = {"status": STR, "database": BOOL, "storage": BOOL, "broker": BOOL}

routes = [
    ApiRoute("/healthz", healthz, "GET", Operation(
        "Process alive", {"200": answer("OK", obj({"status": STR}))}, tag="operations", auth=False)),
    ApiRoute("/readyz", readyz, "GET", Operation(
        "MongoDB answers and stores a write, and the broker answers", {
            "200": answer("Ready", obj(READINESS)), "503": answer("Not ready", obj(READINESS, {"reason": STR}))},
        tag="operations", auth=False)),
    ApiRoute("/metrics", metrics, "GET", Operation(
        "Prometheus metrics", {"200": {"description": "text/plain exposition",
                                       "content": {"text/plain": {"schema": STR}}}}, tag="operations", auth=False)),
]
