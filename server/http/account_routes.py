"""Accounts looked after by their owners through email (server/services/account_mail.py):
forgotten passwords and email verification, under CampusBite's paths."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.domain import messages
from server.http import context
from server.http.body import read_body
from server.http.requests import ForgotPasswordRequest, ResetPasswordRequest
from server.http.responses import ok
from server.http.security import authenticate

# A link's secret: 43 URL-safe base64 characters; anything far from that is no link of ours.
MAX_TOKEN_LENGTH = 100


def _token(request: Request) -> str:
    token: str = request.path_params["token"]
    return token[:MAX_TOKEN_LENGTH]


async def forgot_password(request: Request) -> Response:
    body = await read_body(request, ForgotPasswordRequest)
    await context.runtime(request).account_mail.request_password_reset(
        body.email, request.client.host if request.client else "")
    return ok(None, message=messages.PASSWORD_RESET_SENT)


async def reset_password(request: Request) -> Response:
    body = await read_body(request, ResetPasswordRequest)
    await context.runtime(request).account_mail.reset_password(_token(request), body.password)
    return ok(None, message=messages.PASSWORD_RESET_DONE)


async def verify_email(request: Request) -> Response:
    await context.runtime(request).account_mail.verify_email(_token(request))
    return ok(None, message=messages.EMAIL_VERIFIED)


async def resend_verification(request: Request) -> Response:
    principal = await authenticate(request)
    runtime = context.runtime(request)
    user = await runtime.accounts.current_user(principal)
    if user.email_verified_at is not None:
        return ok(None, message=messages.EMAIL_ALREADY_VERIFIED)
    await runtime.account_mail.send_verification(user)
    return ok(None, message=messages.VERIFICATION_SENT)


routes = [
    Route("/api/auth/forgot-password", forgot_password, methods=["POST"]),
    Route("/api/auth/reset-password/{token}", reset_password, methods=["POST"]),
    Route("/api/auth/verify-email/{token}", verify_email, methods=["POST"]),
    Route("/api/auth/resend-verification", resend_verification, methods=["POST"]),
]
