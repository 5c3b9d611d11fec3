"""`/api/auth/*`, `/api/users/me` and `/api/admin/users`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.access import CUSTOMER_ROLES, Role
from server.http import context
from server.http import campusbite
from server.http.body import query_int, read_body
from server.http.errors import ApiError
from server.http.contract import (
    BUSY_HASHING, COMMON, INT, LIMIT, NULL, PAGE, STR, ApiRoute, Operation, obj, query_param, ref, refusal, success,
)
from server.http.requests import (
    AdminUserPatch, AdminUserRequest, LoginRequest, ProfileUpdateRequest, RefreshRequest, RegisterRequest,
)
from server.http.responses import ok
from server.http.security import authenticate
from server.views import USER_PAGE_SHAPE, admin_user_view, page_view, profile_view, session_view, user_view

if TYPE_CHECKING:
    from server.models import User


async def _session(request: Request, user: User, status_code: int = 200) -> Response:
    tokens = await context.runtime(request).accounts.issue_session(user)
    return ok(session_view(tokens, await _profile(request, user)), status_code=status_code)


async def _profile(request: Request, user: User) -> dict[str, Any]:
    """The user with their trust standing (customers; staff and admins have none), in CampusBite's
    names too: its clients read the standing from `user`."""
    standing = None
    if user.role in CUSTOMER_ROLES:
        standing = await context.runtime(request).accounts.trust_standing(str(user.id))
    return profile_view(user, standing, names=campusbite.USER_ALIASES)


async def register(request: Request) -> Response:
    """A student, faculty member or store employee; a store employee acts for no store until an
    admin assigns one, and the answer's message says so."""
    body = await read_body(request, RegisterRequest)
    user = await context.runtime(request).accounts.register(
        name=body.name, email=body.email, password=body.password, role=Role(body.role),
        register_number=body.register_number, employee_id=body.employee_id, phone_number=body.phone_number,
        requested_store=body.store_name)
    await context.runtime(request).account_mail.send_verification(user)
    tokens = await context.runtime(request).accounts.issue_session(user)
    message = messages.STAFF_SIGNUP_PENDING if user.role == Role.STORE_EMPLOYEE else None
    return ok(session_view(tokens, await _profile(request, user)), status_code=201, message=message)


async def login(request: Request) -> Response:
    body = await read_body(request, LoginRequest)
    email, password = body.email, body.password
    runtime = context.runtime(request)
    # Counted before the password is checked: a throttled attempt is refused without hashing.
    attempt = await runtime.login_throttle.begin(email, request.client.host if request.client else "")
    user = await runtime.accounts.login(email, password)
    await runtime.login_throttle.succeeded(attempt)
    return await _session(request, user)


async def refresh(request: Request) -> Response:
    body = await read_body(request, RefreshRequest)
    user, tokens = await context.runtime(request).accounts.refresh(body.refresh_token)
    return ok(session_view(tokens, await _profile(request, user)))


async def logout(request: Request) -> Response:
    body = await read_body(request, RefreshRequest)
    await context.runtime(request).accounts.logout(body.refresh_token)
    return ok(None, message=messages.LOGGED_OUT)


async def me(request: Request) -> Response:
    principal = await authenticate(request)
    runtime = context.runtime(request)
    user = await runtime.accounts.current_user(principal)
    return ok(await _profile(request, user))


async def update_profile(request: Request) -> Response:
    """`PUT /api/users/profile`: the caller's name, phone number and (students) register number.
    The email is where password reset links go, so a change of it is refused here, as is a role."""
    principal = await authenticate(request)
    body = await read_body(request, ProfileUpdateRequest)
    accounts = context.runtime(request).accounts
    user = await accounts.current_user(principal)
    if body.email is not None and (not isinstance(body.email, str) or body.email.strip().lower() != user.email):
        raise ApiError(400, messages.PROFILE_EMAIL_FIXED)
    if body.role is not None and body.role != user.role:
        raise ApiError(400, messages.PROFILE_ROLE_FIXED)
    sent = body.model_fields_set
    changes = {name: getattr(body, name) for name in ("name", "register_number") if getattr(body, name) is not None}
    if "phone_number" in sent:
        changes["phone_number"] = body.phone_number
    if not changes and not sent & {"email", "role"}:
        raise ApiError(400, messages.PROFILE_UPDATE_EMPTY)
    user = await accounts.update_profile(principal, changes)
    return ok(await _profile(request, user), message=messages.PROFILE_UPDATED)


async def create_user(request: Request) -> Response:
    await authenticate(request, Role.ADMIN)
    body = await read_body(request, AdminUserRequest)
    user = await context.runtime(request).accounts.create_user(
        name=body.name, email=body.email, password=body.password, role=Role(body.role), store_id=body.store_id)
    return ok(user_view(user), status_code=201)


async def list_users(request: Request) -> Response:
    """Accounts, newest first: `?role=`, `?search=` (part of a name or email), paginated."""
    await authenticate(request, Role.ADMIN)
    page = query_int(request.query_params.get("page"), "page", 1, 1, 10_000)
    limit = query_int(request.query_params.get("limit"), "limit", 20, 1, 100)
    role = request.query_params.get("role") or None
    if role is not None and role not in tuple(Role):
        raise ApiError(400, messages.QUERY_NOT_CHOICE.format(name="role", choices=", ".join(Role)))
    search = (request.query_params.get("search") or "").strip() or None
    if search is not None and len(search) > 100:
        raise ApiError(400, messages.QUERY_TOO_LONG.format(name="search", maximum=100))
    awaiting = request.query_params.get("awaitingStore")
    if awaiting not in (None, "true", "false"):
        raise ApiError(400, messages.QUERY_NOT_CHOICE.format(name="awaitingStore", choices="true, false"))
    users, total = await context.runtime(request).accounts.list_users(page=page, limit=limit, role=role, search=search,
                                                               awaiting_store=awaiting == "true")
    # A store employee's sign-up shows until an admin assigns a store (`PUT /api/admin/users/{id}/role`).
    return ok(page_view(USER_PAGE_SHAPE, [admin_user_view(user, signup=True) for user in users], page, limit, total))


async def update_user(request: Request) -> Response:
    """Disable (`{"isActive": false}`) or re-enable an account; a disabled account's tokens,
    refresh tokens and open sockets stop working on every process."""
    admin = await authenticate(request, Role.ADMIN)
    user_id = request.path_params["user_id"]
    active = (await read_body(request, AdminUserPatch)).is_active
    if not active and user_id == admin.user_id:
        raise ApiError(400, messages.CANNOT_DISABLE_SELF)
    user = await context.runtime(request).accounts.set_active(user_id, active)
    return ok(admin_user_view(user, signup=True))


async def stream_ticket(request: Request) -> Response:
    """A 30-second, single-use `?ticket=` for one event stream: EventSource cannot send headers."""
    principal = await authenticate(request)
    ticket, lifetime = await context.runtime(request).accounts.issue_stream_ticket(principal)
    return ok({"ticket": ticket, "expiresInSeconds": lifetime}, status_code=201)


routes = [
    ApiRoute("/api/auth/register", register, "POST", Operation(
        "Register a student, a faculty member, or a store employee who acts for no store until an admin assigns one",
        {"201": success(ref("Session"), "Registered"), **COMMON, "409": refusal("Email taken"),
         "503": refusal(BUSY_HASHING)}, tag="auth", auth=False, body=RegisterRequest)),
    ApiRoute("/api/auth/login", login, "POST", Operation(
        "Sign in", {"200": success(ref("Session")), **COMMON,
                    "429": refusal("Too many failed sign-ins; see Retry-After"), "503": refusal(BUSY_HASHING)},
        tag="auth", auth=False, body=LoginRequest)),
    ApiRoute("/api/auth/refresh", refresh, "POST", Operation(
        "Rotate a refresh token", {"200": success(ref("Session")), **COMMON}, tag="auth", auth=False,
        body=RefreshRequest)),
    ApiRoute("/api/auth/logout", logout, "POST", Operation(
        "Revoke a refresh token's family", {"200": success(NULL, message=True), **COMMON}, tag="auth", auth=False,
        body=RefreshRequest)),
    ApiRoute("/api/users/me", me, "GET", Operation(
        "The caller's profile and trust tier", {"200": success(ref("Profile")), **COMMON}, tag="auth")),
    ApiRoute("/api/admin/users", create_user, "POST", Operation(
        "Create store staff or an admin (admins)", {"201": success(ref("User"), "Created"), **COMMON,
                                                    "404": refusal("Store not found"), "409": refusal("Email taken")},
        tag="admin", body=AdminUserRequest)),
    ApiRoute("/api/admin/users", list_users, "GET", Operation(
        "Accounts, newest first (admins)", {"200": success(ref("UserPage")), **COMMON}, tag="admin", params=(
            query_param("role", {"enum": ["", *(role.value for role in Role)]}),
            query_param("search", {"type": "string", "maxLength": 100}, "part of a name or email"),
            query_param("awaitingStore", {"enum": ["true", "false"]},
                  "true: only store employees who signed up and wait for an admin to assign a store"),
            PAGE, LIMIT))),
    ApiRoute("/api/admin/users/{user_id}", update_user, "PATCH", Operation(
        "Disable or re-enable an account (admins)", {"200": success(ref("AdminUser")), **COMMON,
                                                     "404": refusal("User not found"),
                                                     "409": refusal("The last active admin")},
        tag="admin", body=AdminUserPatch)),
    ApiRoute("/api/auth/stream-ticket", stream_ticket, "POST", Operation(
        "A 30-second, single-use `?ticket=` for one event stream",
        {"201": success(obj({"ticket": STR, "expiresInSeconds": INT}), "Issued"), **COMMON}, tag="auth")),
    # CampusBite's names of the same routes.
    ApiRoute("/api/users/profile", me, "GET", Operation(
        "`/api/users/me` under CampusBite's name", {"200": success(ref("Profile")), **COMMON}, tag="campusbite")),
    ApiRoute("/api/users/profile", update_profile, "PUT", Operation(
        "Change the caller's name, phone number or (students) register number; a change of email or role is a 400",
        {"200": success(ref("Profile"), message=True), **COMMON}, tag="campusbite", body=ProfileUpdateRequest)),
    ApiRoute("/api/auth/refresh-token", refresh, "POST", Operation(
        "`/api/auth/refresh` under CampusBite's name", {"200": success(ref("Session")), **COMMON}, tag="campusbite",
        auth=False, body=RefreshRequest)),
]
