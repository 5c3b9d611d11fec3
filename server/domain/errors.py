"""What went wrong, said without a transport.

Our exception hierarchy:

* OrderPulseError
  x Invalid
    + InvalidTransition
  x Unauthenticated
  x Forbidden
  x NotFound
  x Conflict
  x RateLimited
  x Unavailable

Services and rules raise these; each edge chooses how to answer them: the REST API and the
partner API a status code and body (server/http/errors.py, server/http/partner_routes.py), a
WebSocket an error frame or close code and an event stream its status (server/realtime/session.py,
server/http/streams.py), the command line a line on stderr. No status code lives here.
"""

from __future__ import annotations


class OrderPulseError(Exception):
    """A refusal the caller can act on: `code` is stable for machines, `message` is for people
    and is the contract's text to the letter."""

    code = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Invalid(OrderPulseError):
    """What the caller sent breaks a rule: a malformed value, an unknown item, a wrong code."""

    code = "invalid"


class InvalidTransition(Invalid):
    """The order's lifecycle has no such step from where the order is (not ready, not paid yet)."""

    code = "invalid_transition"


class Unauthenticated(OrderPulseError):
    """No caller could be verified: no token, a bad or expired one, an account gone."""

    code = "unauthenticated"


class Forbidden(OrderPulseError):
    """The caller is known and may not do this."""

    code = "forbidden"


class NotFound(OrderPulseError):
    """The thing named does not exist (or the caller may not learn that it does)."""

    code = "not_found"


class Conflict(OrderPulseError):
    """The request is fine but the state it meets is not: changed meanwhile, final, or taken."""

    code = "conflict"


class RateLimited(OrderPulseError):
    """Too many attempts, or too many at once, for this caller: try again after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unavailable(OrderPulseError):
    """The server cannot serve this now (busy, or its database is away): try again after `retry_after` seconds."""

    code = "unavailable"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
