"""Refusals as HTTP answers: the status each domain error gets, and the `/api` error body.

The partner API (`/v1`) answers the same statuses in its own body (server/http/partner_routes.py).
"""

from __future__ import annotations

from starlette.requests import Request

from server.domain.errors import (Conflict, Forbidden, Invalid, NotFound, OrderPulseError, RateLimited,
                                  Unauthenticated, Unavailable)
from server.http.responses import JSONResponse, failure

STATUS: dict[type[OrderPulseError], int] = {
    Invalid: 400,  # InvalidTransition too
    Unauthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RateLimited: 429,
    Unavailable: 503,
}


class ApiError(Exception):
    """A refusal the HTTP layer makes itself, with the status it chose: a body too large or not
    JSON, a malformed query, the partner API's own client statuses."""

    def __init__(self, status_code: int, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}


Refusal = OrderPulseError | ApiError
REFUSALS = (OrderPulseError, ApiError)  # for `except`: every refusal a caller is answered with


def status_of(refusal: Refusal) -> int:
    if isinstance(refusal, ApiError):
        return refusal.status_code
    return next(STATUS[kind] for kind in type(refusal).__mro__ if kind in STATUS)


def headers_of(refusal: Refusal) -> dict[str, str]:
    if isinstance(refusal, ApiError):
        return refusal.headers
    if isinstance(refusal, (RateLimited, Unavailable)):
        return {"Retry-After": str(refusal.retry_after)}
    return {}


def rest_response(refusal: Refusal) -> JSONResponse:
    """`{"success": false, "message": ...}` with the refusal's status and headers."""
    return failure(status_of(refusal), refusal.message, headers=headers_of(refusal))


async def rest_error(request: Request, exc: Exception) -> JSONResponse:
    """The app's exception handler for every refusal raised under an `/api` route."""
    assert isinstance(exc, REFUSALS)
    return rest_response(exc)
