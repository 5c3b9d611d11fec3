"""The ASGI application: routes top to bottom, error handling, metrics, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.config import Settings
from server.domain import messages
from server.domain.clock import SYSTEM_CLOCK, Clock
from server.http import openapi, ops_routes, pages, partner_routes, streams
from server.http.errors import REFUSALS, ApiError, rest_error, rest_response
from server.http.poll_fast_path import PollStatusFastPath
from server.http.responses import failure
from server.http.route_table import API_ROUTES
from server.http.security import PresentedCredentials
from server.http.security_headers import add_security_headers
from server.logging_filter import install_secret_filter
from server.runtime import Runtime

F = TypeVar("F", bound=Callable[..., Any])

log = logging.getLogger("orderpulse")

_HTTP_MESSAGES = {404: messages.NOT_FOUND, 405: messages.METHOD_NOT_ALLOWED, 413: messages.BODY_TOO_LARGE}


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404 and pages.STATIC_DIR.is_dir() and pages.is_page_path(request.url.path, request.method):
        return pages.not_found_page()
    message = _HTTP_MESSAGES.get(exc.status_code, str(exc.detail))
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        # Starlette names only the methods of the first route that matched the path; a path
        # served by several routes (GET and POST /api/orders) accepts the union of them.
        headers = {**(headers or {}), "Allow": ", ".join(allowed_methods(request.app, request.scope["path"]))}
    refusal = ApiError(exc.status_code, message, headers=headers)
    if partner_routes.owns_unmatched(request.url.path):  # no partner route matched; those answer their own
        return partner_routes.error_response(refusal)
    return rest_response(refusal)


def allowed_methods(app: Starlette, path: str) -> list[str]:
    """The methods of every route with the template that first matches `path`, sorted: the
    literal `/api/orders/checkout-session` is POST only, though `/api/orders/{order_id}` matches it."""
    routes = [r for r in app.router.routes if isinstance(r, Route) and r.methods and r.path_regex.match(path)]
    return sorted({m for r in routes if r.path == routes[0].path for m in r.methods or ()}) if routes else []


class RequestEdge:
    """Every HTTP request passes here (pure ASGI: no per-request task). It counts and times the
    request by route template, adds the security headers (server/http/security_headers.py), and is
    the last line for a bug: log it for operators and answer a bare 500 in the caller's error
    shape, keeping the connection open.

    Not a Starlette `Exception` handler: `ServerErrorMiddleware` re-raises after sending its 500,
    and uvicorn then closes the keep-alive connection. A client that takes that connection from
    its pool for the next request at that moment gets a reset instead of an answer. An error after
    the response has started cannot be answered any more; it goes on to uvicorn, which closes the
    connection, the only honest end for a half-sent response.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = add_security_headers(list(message.get("headers", ())))
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        except ClientDisconnect:
            # The client left before its body arrived: nobody to answer, nothing of ours broke.
            # Counted apart as nginx's "499 client closed request".
            if status is None:
                status = 499
        except Exception:
            if status is not None:
                status = 500  # counted as the failure it is, whatever the half-sent status said
                raise
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            if partner_routes.serves(scope):
                response = partner_routes.internal_error()
            else:
                response = failure(500, messages.INTERNAL_ERROR)
            await response(scope, receive, send_with_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], template, str(status or 500)).inc()
            metrics.REQUEST_SECONDS.labels(template).observe(time.perf_counter() - started)


def _returns_coroutine(function: F) -> F:
    """Mark `function`, which is not a coroutine function but returns a coroutine, as an ASGI 3
    application to servers that look (uvicorn's `interface="auto"` asks `iscoroutinefunction`)."""
    mark = getattr(inspect, "markcoroutinefunction", None)  # Python 3.12 and later
    if mark is not None:
        marked: F = mark(function)
        return marked
    function._is_coroutine = asyncio.coroutines._is_coroutine  # type: ignore[attr-defined]  # Python 3.11's marker
    return function


class OrderPulseApp(Starlette):
    """Starlette, with two hot paths taken before the middleware stack: the poll-status answer
    for a known caller, and `/ws`, whose connection lives for hours (every coroutine frame
    between the server and the socket's read loop is kept alive for each open socket, and the
    HTTP middleware has nothing to do for a WebSocket)."""

    def __init__(self, *args: Any, runtime: Runtime, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Where handlers find it (server/http/context.py).
        self.state.runtime = runtime
        self._fast_poll = PollStatusFastPath(runtime)
        # What the HTTP protocol may write as soon as a request's head is read, without calling
        # the app: a poll-status answer held in memory (`InlineAnswer`, server/uvicorn_adapter).
        self.inline_answer = self._fast_poll.answer_inline
        self._sockets = streams.WebSocketApp()

    @property
    def runtime(self) -> Runtime:
        """This process's services, for the command line that serves the app."""
        services: Runtime = self.state.runtime
        return services

    @_returns_coroutine
    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Coroutine[Any, Any, None]:
        # Not a coroutine itself: for `/ws`, the session's coroutine is the connection's.
        if scope["type"] == "websocket" and scope["path"] == "/ws":
            scope["app"] = self
            return self._sockets(scope, receive, send)
        return self._serve(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._fast_poll.matches(scope) and await self._fast_poll.try_answer(scope, send):
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, clock: Clock = SYSTEM_CLOCK) -> OrderPulseApp:
    """The application; in-process tests pass a `clock` they move by hand."""
    settings = settings or Settings()
    install_secret_filter()
    runtime = Runtime(settings, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        install_secret_filter()  # again: the server may have replaced its handlers since
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = OrderPulseApp(
        runtime=runtime,
        routes=[*API_ROUTES, *openapi.routes, *pages.routes()],
        middleware=[Middleware(RequestEdge), Middleware(PresentedCredentials)],
        # An unreachable MongoDB is a 503 with Retry-After, answered here (not re-raised).
        exception_handlers={**dict.fromkeys(REFUSALS, rest_error), HTTPException: http_error,
                            **ops_routes.database_outage_handlers()},
        lifespan=lifespan,
    )
    return app
