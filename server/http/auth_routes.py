"""`/api/auth/*`, `/api/users/me` and `/api/admin/users`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from server.domain import messages
from server.domain.access import ADMIN_GIVEN_ROLES, CUSTOMER_ROLES, Role, may_place_orders
from server.domain.clock import iso_z
from server.domain.errors import ApiError
from server.http.body import Fields, has_unsafe_characters, query_int, request_fields
from server.http.responses import ok
from server.http.security import authenticate
from server.views import user_view

MIN_PASSWORD = 8
MAX_PASSWORD = 200


def _runtime(request: Request):
    return request.app.state.runtime


def _credentials(fields: Fields) -> tuple[str, str, str]:
    name = fields.string("name", max_length=100)
    email = fields.email("email")
    password = fields.raw("password")
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ApiError(400, f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters.")
    if not password.strip():
        raise ApiError(400, messages.PASSWORD_BLANK)
    if has_unsafe_characters(password):
        raise ApiError(400, messages.FIELD_UNSAFE_CHARACTERS.format(field="password"))
    return name, email, password


async def _session(request: Request, user, status_code: int = 200):
    tokens = await _runtime(request).accounts.issue_session(user)
    return ok({**tokens, "user": user_view(user)}, status_code=status_code)


async def register(request: Request):
    fields = await request_fields(request)
    name, email, password = _credentials(fields)
    role = fields.string("role", choices=CUSTOMER_ROLES)
    register_number = employee_id = None
    if role == Role.STUDENT:
        register_number = fields.string("registerNumber", max_length=50)
    else:
        employee_id = fields.string("employeeId", max_length=50)
    user = await _runtime(request).accounts.register_customer(
        name=name, email=email, password=password, role=role,
        register_number=register_number, employee_id=employee_id)
    return await _session(request, user, 201)


async def login(request: Request):
    fields = await request_fields(request)
    email = fields.email("email")  # normalised as registration normalised it
    # Exactly as typed: registration keeps leading and trailing spaces, so sign-in must too.
    password = fields.raw("password")
    if not isinstance(password, str) or not password:
        raise ApiError(400, "password is required.")
    if len(password) > MAX_PASSWORD:
        raise ApiError(400, f"password must be at most {MAX_PASSWORD} characters.")
    runtime = _runtime(request)
    # Counted before the password is checked: a throttled attempt is refused without hashing.
    attempt = await runtime.login_throttle.begin(email, request.client.host if request.client else "")
    user = await runtime.accounts.login(email, password)
    await runtime.login_throttle.succeeded(attempt)
    return await _session(request, user)


async def refresh(request: Request):
    fields = await request_fields(request)
    token = fields.string("refreshToken", max_length=200)
    user, tokens = await _runtime(request).accounts.refresh(token)
    return ok({**tokens, "user": user_view(user)})


async def logout(request: Request):
    fields = await request_fields(request)
    token = fields.string("refreshToken", max_length=200)
    await _runtime(request).accounts.logout(token)
    return ok(None, message=messages.LOGGED_OUT)


async def me(request: Request):
    principal = await authenticate(request)
    runtime = _runtime(request)
    user = await runtime.accounts.current_user(principal)
    profile = user_view(user)
    if may_place_orders(principal):
        standing = await runtime.accounts.trust_standing(str(user.id))
        profile.update(trustTier=standing.tier.value, noShowCount=standing.no_show_count,
                       orderingRestrictedUntil=iso_z(standing.restricted_until))
    else:
        profile.update(trustTier=None, noShowCount=0, orderingRestrictedUntil=None)
    return ok(profile)


async def create_user(request: Request):
    await authenticate(request, Role.ADMIN)
    fields = await request_fields(request)
    name, email, password = _credentials(fields)
    role = fields.string("role", choices=ADMIN_GIVEN_ROLES)
    store_id = fields.string("storeId", required=False, max_length=24)
    user = await _runtime(request).accounts.create_user(
        name=name, email=email, password=password, role=role, store_id=store_id)
    return ok(user_view(user), status_code=201)


def _admin_user_view(user) -> dict:
    return {**user_view(user), "isActive": user.is_active}


async def list_users(request: Request):
    """Accounts, newest first: `?role=`, `?search=` (part of a name or email), paginated."""
    await authenticate(request, Role.ADMIN)
    page = query_int(request.query_params.get("page"), "page", 1, 1, 10_000)
    limit = query_int(request.query_params.get("limit"), "limit", 20, 1, 100)
    role = request.query_params.get("role") or None
    if role is not None and role not in tuple(Role):
        raise ApiError(400, f"role must be one of: {', '.join(Role)}.")
    search = (request.query_params.get("search") or "").strip() or None
    if search is not None and len(search) > 100:
        raise ApiError(400, "search must be at most 100 characters.")
    users, total = await _runtime(request).accounts.list_users(page=page, limit=limit, role=role, search=search)
    return ok({"users": [_admin_user_view(user) for user in users], "page": page, "limit": limit,
               "total": total, "pages": (total + limit - 1) // limit})


async def update_user(request: Request):
    """Disable (`{"isActive": false}`) or re-enable an account; a disabled account's tokens,
    refresh tokens and open sockets stop working on every process."""
    admin = await authenticate(request, Role.ADMIN)
    user_id = request.path_params["user_id"]
    fields = await request_fields(request)
    active = fields.raw("isActive")
    if not isinstance(active, bool):
        raise ApiError(400, "isActive is required and must be true or false.")
    if not active and user_id == admin.user_id:
        raise ApiError(400, messages.CANNOT_DISABLE_SELF)
    user = await _runtime(request).accounts.set_active(user_id, active)
    return ok(_admin_user_view(user))


async def stream_ticket(request: Request):
    """A 30-second, single-use `?ticket=` for one event stream: EventSource cannot send headers."""
    principal = await authenticate(request)
    ticket, lifetime = await _runtime(request).accounts.issue_stream_ticket(principal)
    return ok({"ticket": ticket, "expiresInSeconds": lifetime}, status_code=201)


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/refresh", refresh, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/users/me", me, methods=["GET"]),
    Route("/api/admin/users", create_user, methods=["POST"]),
    Route("/api/admin/users", list_users, methods=["GET"]),
    Route("/api/admin/users/{user_id}", update_user, methods=["PATCH"]),
    Route("/api/auth/stream-ticket", stream_ticket, methods=["POST"]),
]
