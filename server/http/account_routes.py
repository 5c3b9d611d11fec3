"""Accounts looked after by their owners through email (server/services/account_mail.py):
forgotten passwords and email verification, under CampusBite's paths."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.http import context
from server.http.body import read_body
from server.http.contract import BUSY_HASHING, COMMON, NULL, ApiRoute, Operation, refusal, success
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
    ApiRoute("/api/auth/forgot-password", forgot_password, "POST", Operation(
        "Mail a password reset link (the same answer whether or not the email has an account)", {
            "200": success(NULL, message=True), **COMMON,
            "429": refusal("Too many mails asked for from this address; see Retry-After")},
        tag="auth", auth=False, body=ForgotPasswordRequest)),
    ApiRoute("/api/auth/reset-password/{token}", reset_password, "POST", Operation(
        "Set a new password with a mailed link (once, within ACCOUNT_LINK_MINUTES); every session ends", {
            "200": success(NULL, message=True), **COMMON, "503": refusal(BUSY_HASHING)},
        tag="auth", auth=False, body=ResetPasswordRequest)),
    ApiRoute("/api/auth/verify-email/{token}", verify_email, "POST", Operation(
        "Verify the account's email with a mailed link", {
            "200": success(NULL, message=True), "400": refusal("Invalid, used or expired link")},
        tag="auth", auth=False)),
    ApiRoute("/api/auth/resend-verification", resend_verification, "POST", Operation(
        "Mail the caller a new verification link", {"200": success(NULL, message=True), **COMMON}, tag="auth")),
]
