"""poll-status for an order this process already holds, answered below the framework.

Legacy clients poll an unchanged order over and over; that answer needs no database read and
no routing, request objects or middleware either. This pure-ASGI path answers it when the
caller's token and user are already known and the order's snapshot is fresh; every other case
(a first poll, an error, a rate limit, `?wait=`) falls through to the route in `order_routes`,
which produces the same answers the slow way.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING

from starlette.types import Scope, Send

from server import metrics
from server.domain.errors import OrderPulseError
from server.http.security_headers import API_HEADERS

if TYPE_CHECKING:
    from server.runtime import Runtime

PREFIX = "/api/orders/"
SUFFIX = "/poll-status"
ROUTE = PREFIX + "{order_id}" + SUFFIX
_PATH_LENGTH = len(PREFIX) + 24 + len(SUFFIX)
# An entity tag, weak or strong (RFC 9110 §8.8.3); its opaque part may itself hold commas.
_ENTITY_TAG = re.compile(r'\s*(?:W/)?("[^"]*")\s*(?:,|$)')


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 §13.1.2: If-None-Match compares weakly (a `W/` prefix on either side is ignored),
    takes a list of tags, and `*` matches any current representation."""
    if if_none_match is None:
        return False
    if if_none_match == etag:  # what our own clients send back: no parsing on the hot path
        return True
    if if_none_match.strip() == "*":
        return True
    opaque = etag[2:] if etag.startswith("W/") else etag
    return any(match.group(1) == opaque for match in _ENTITY_TAG.finditer(if_none_match))


def poll_headers(etag: str) -> list[tuple[bytes, bytes]]:
    return [(b"etag", etag.encode()), (b"cache-control", b"no-cache"), *API_HEADERS]


class PollStatusFastPath:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._timer = metrics.REQUEST_SECONDS.labels(ROUTE)
        self._counted = {status: metrics.REQUESTS.labels("GET", ROUTE, str(status)) for status in (200, 304)}
        self._from_snapshot = metrics.POLL_CACHE.labels("snapshot")

    def matches(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
            return False
        path = scope["path"]
        return len(path) == _PATH_LENGTH and path.startswith(PREFIX) and path.endswith(SUFFIX)

    async def try_answer(self, scope: Scope, send: Send) -> bool:
        """Answer and return True, or return False to let the route handle the request."""
        started = time.perf_counter()
        answer = self._answer(scope)
        if answer is None:
            return False
        status, headers, body = answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        self._count(status, started)
        return True

    def answer_inline(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """The same answer for the HTTP protocol to write as soon as the request's head is read
        (`InlineAnswer`, server/uvicorn_adapter/http_limits.py), or None for the application."""
        if not self.matches(scope):
            return None
        started = time.perf_counter()
        answer = self._answer(scope)
        if answer is not None:
            self._count(answer[0], started)
        return answer

    def _count(self, status: int, started: float) -> None:
        self._counted[status].inc()
        self._from_snapshot.inc()
        self._timer.observe(time.perf_counter() - started)

    def _answer(self, scope: Scope) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        authorization = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value
        if authorization is None or authorization[:7].lower() != b"bearer ":
            return None
        runtime = self._runtime
        now = runtime.clock.now()
        principal = runtime.accounts.known_principal(authorization[7:].strip().decode("latin-1"), now.timestamp())
        if principal is None:
            return None
        order_id = scope["path"][len(PREFIX):len(PREFIX) + 24]
        snapshot = runtime.snapshots.get(order_id)
        if snapshot is None or (snapshot.next_deadline_at is not None and snapshot.next_deadline_at <= now):
            return None
        try:
            runtime.orders.authorise(principal, snapshot.user_id, snapshot.store_id)
        except OrderPulseError:
            return None
        if runtime.poll_limiter.retry_after(principal.user_id, order_id) is not None:
            return None  # the route answers the 429 (the limiter records nothing for it)
        headers = poll_headers(snapshot.etag)
        if if_none_match is not None and etag_matches(if_none_match.decode("latin-1"), snapshot.etag):
            return 304, headers, b""
        headers.append((b"content-type", b"application/json"))
        headers.append((b"content-length", str(len(snapshot.body)).encode()))
        return 200, headers, snapshot.body
