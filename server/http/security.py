"""Who is calling, and may they: bearer tokens and role checks for the handlers."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from server.domain import messages
from server.domain.access import Principal, Role
from server.domain.errors import ApiError

# The roles that may write to a store or its menu; which store is the service's check
# (`catalog.authorise_store_staff`). Asked for first, so a customer is refused before any lookup
# and before the body is read.
STORE_RUNNERS = (Role.STORE_EMPLOYEE, Role.ADMIN)


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
    token = bearer_token(connection, allow_query)
    principal = await connection.app.state.runtime.accounts.authenticate(token)
    if roles and principal.role not in roles:
        raise ApiError(403, messages.FORBIDDEN_ROLE)
    return principal
