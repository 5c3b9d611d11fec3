"""Who is calling, and may they: bearer tokens and role checks for the handlers."""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from server.domain import messages
from server.domain.access import Principal, Role
from server.http.errors import REFUSALS, ApiError, rest_response, status_of
from server.http import context

# The roles that may write to a store or its menu; which store is the service's check
# (`catalog.authorise_store_staff`). Asked for first, so a customer is refused before any lookup
# and before the body is read.
STORE_RUNNERS = (Role.STORE_EMPLOYEE, Role.ADMIN)

# Routes whose credential travels in the body or the path (a password, a refresh token, a mailed
# link): an expired access token a client still attaches must not keep its user from signing in
# again, refreshing, or resetting a password, so these never read `Authorization`.
CREDENTIAL_PATHS = frozenset({"/api/auth/login", "/api/auth/register", "/api/auth/refresh",
                              "/api/auth/refresh-token", "/api/auth/logout", "/api/auth/forgot-password"})
CREDENTIAL_PREFIXES = ("/api/auth/reset-password/", "/api/auth/verify-email/")
# Where the caller verified for this request is kept, with the header it came from.
_VERIFIED = "orderpulse.principal"


def bearer_token(connection: HTTPConnection, allow_query: bool = False) -> str:
    header = connection.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(401, messages.INVALID_TOKEN)
        return token.strip()
    if allow_query and connection.query_params.get("token"):
        return connection.query_params["token"]
    raise ApiError(401, messages.NO_TOKEN)


def has_token(connection: HTTPConnection, allow_query: bool = False) -> bool:
    """Whether the request carries a token at all (an `Authorization` header, or `?token=`)."""
    return "authorization" in connection.headers or (allow_query and "token" in connection.query_params)


async def authenticate(connection: HTTPConnection, *roles: Role, allow_query: bool = False) -> Principal:
    """The verified caller; 401 without a valid token, 403 when the role may not use the route."""
    verified = connection.scope.get(_VERIFIED)
    if verified is not None and verified[0] == connection.headers.get("authorization"):
        principal: Principal = verified[1]
    else:
        token = bearer_token(connection, allow_query)
        principal = await context.runtime(connection).accounts.authenticate(token)
    if roles and principal.role not in roles:
        raise ApiError(403, messages.FORBIDDEN_ROLE)
    return principal


async def optional_caller(connection: HTTPConnection) -> Principal | None:
    """The caller of a route that also serves anonymous callers: None without `Authorization`;
    a presented one is verified like anywhere else (401 when bad, never downgraded to none)."""
    if "authorization" not in connection.headers:
        return None
    return await authenticate(connection)


def reads_authorization(path: str) -> bool:
    """Whether a request to `path` that presents `Authorization` has it verified before its route runs."""
    return path.startswith("/api/") and path not in CREDENTIAL_PATHS and not path.startswith(CREDENTIAL_PREFIXES)


class PresentedCredentials:
    """An `/api` request that presents `Authorization` is verified before any route runs: one that
    is malformed, expired, revoked or of a disabled account is the same `401` on every route, the
    public ones too (a client refreshes on a 401; a public answer would hide that its token died).
    The verified caller is kept for the route's own `authenticate`. Anything but a 401 (a database
    outage) is left for the route, whose own handling answers it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and reads_authorization(scope["path"]):
            connection = HTTPConnection(scope)
            header = connection.headers.get("authorization")
            if header is not None:
                try:
                    scope[_VERIFIED] = (header, await authenticate(connection))
                except REFUSALS as refused:
                    if status_of(refused) == 401:
                        await rest_response(refused)(scope, receive, send)
                        return
                except Exception:  # noqa: BLE001 - the route meets the same failure and answers it
                    pass
        await self.app(scope, receive, send)
