"""The one exception handlers turn into a client error response."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client-visible failure: status code, message and optional extras for the body."""

    def __init__(self, status_code: int, message: str, *, headers: dict[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}
        self.extra = extra
