"""JSON responses in the `/api` envelope, encoded with orjson."""

from __future__ import annotations

from typing import Any, Literal

import orjson
from pydantic import ConfigDict, with_config
from starlette.responses import Response
from typing_extensions import TypedDict


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def ok(data: Any, status_code: int = 200, message: str | None = None,
       headers: dict[str, str] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": True}
    if message is not None:
        body["message"] = message
    body["data"] = data
    return JSONResponse(body, status_code=status_code, headers=headers)


@with_config(ConfigDict(extra="forbid"))
class Error(TypedDict):
    """Every `/api` refusal's body."""

    success: Literal[False]
    message: str


def failure(status_code: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body: Error = {"success": False, "message": message}
    return JSONResponse(body, status_code=status_code, headers=headers)
