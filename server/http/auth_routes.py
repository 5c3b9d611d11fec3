"""`/api/auth/*`, `/api/users/me` and `/api/admin/users`."""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.routing import Route

from server.domain import messages
from server.domain.clock import iso_z
from server.errors import ApiError
from server.http.body import Fields, request_fields
from server.http.responses import ok
from server.http.security import ADMINS, authenticate
from server.views import user_view

EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
MIN_PASSWORD = 8


def _runtime(request: Request):
    return request.app.state.runtime


def _credentials(fields: Fields) -> tuple[str, str, str]:
    name = fields.string("name", max_length=100)
    email = fields.string("email", max_length=254)
    if not EMAIL.fullmatch(email):
        raise ApiError(400, "email must be a valid email address.")
    password = fields.raw("password")
    if not isinstance(password, str) or len(password) < MIN_PASSWORD or len(password) > 200:
        raise ApiError(400, f"password must be {MIN_PASSWORD} to 200 characters.")
    return name, email, password


async def _session(request: Request, user, status_code: int = 200):
    tokens = await _runtime(request).accounts.issue_session(user)
    return ok({**tokens, "user": user_view(user)}, status_code=status_code)


async def register(request: Request):
    fields = await request_fields(request)
    name, email, password = _credentials(fields)
    role = fields.string("role", choices=("student", "faculty"))
    register_number = employee_id = None
    if role == "student":
        register_number = fields.string("registerNumber", max_length=50)
    else:
        employee_id = fields.string("employeeId", max_length=50)
    user = await _runtime(request).accounts.register_customer(
        name=name, email=email, password=password, role=role,
        register_number=register_number, employee_id=employee_id)
    return await _session(request, user, 201)


async def login(request: Request):
    fields = await request_fields(request)
    email = fields.string("email", max_length=254)
    password = fields.string("password", max_length=200)
    user = await _runtime(request).accounts.login(email, password)
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
    from server.models import User
    user = await User.get(principal.user_id)
    if user is None:
        raise ApiError(401, messages.USER_NOT_FOUND)
    profile = user_view(user)
    if principal.is_customer:
        standing = await runtime.accounts.trust_standing(str(user.id))
        profile.update(trustTier=standing.tier.value, noShowCount=standing.no_show_count,
                       orderingRestrictedUntil=iso_z(standing.restricted_until))
    else:
        profile.update(trustTier=None, noShowCount=0, orderingRestrictedUntil=None)
    return ok(profile)


async def create_user(request: Request):
    await authenticate(request, *ADMINS)
    fields = await request_fields(request)
    name, email, password = _credentials(fields)
    role = fields.string("role", choices=("store_employee", "admin"))
    store_id = fields.string("storeId", required=False, max_length=24)
    user = await _runtime(request).accounts.create_user(
        name=name, email=email, password=password, role=role, store_id=store_id)
    return ok(user_view(user), status_code=201)


routes = [
    Route("/api/auth/register", register, methods=["POST"]),
    Route("/api/auth/login", login, methods=["POST"]),
    Route("/api/auth/refresh", refresh, methods=["POST"]),
    Route("/api/auth/logout", logout, methods=["POST"]),
    Route("/api/users/me", me, methods=["GET"]),
    Route("/api/admin/users", create_user, methods=["POST"]),
]
