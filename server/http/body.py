"""Reading request bodies: size limit, JSON, and typed fields with errors that name the field."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from server.domain import messages
from server.errors import ApiError

MAX_STRING = 500


async def request_fields(request: Request) -> Fields:
    """The request's JSON object, within the configured body limit."""
    return Fields(await read_json(request, request.app.state.runtime.settings.max_body_bytes))


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """The JSON object of the body; `{}` for an empty body; 413 past the limit; 400 if malformed."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ApiError(413, messages.BODY_TOO_LARGE)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, messages.BODY_TOO_LARGE)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, messages.MALFORMED_JSON) from None
    if not isinstance(data, dict):
        raise ApiError(400, messages.MALFORMED_JSON)
    return data


class Fields:
    """Typed access to a JSON object's fields; unknown fields are ignored."""

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def string(self, name: str, *, required: bool = True, max_length: int = MAX_STRING,
               choices: tuple[str, ...] | None = None) -> str | None:
        value = self._data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ApiError(400, f"{name} is required.")
            return None
        if not isinstance(value, str):
            raise ApiError(400, f"{name} must be a string.")
        value = value.strip()
        if len(value) > max_length:
            raise ApiError(400, f"{name} must be at most {max_length} characters.")
        if choices is not None and value not in choices:
            raise ApiError(400, f"{name} must be one of: {', '.join(choices)}.")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._data.get(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise ApiError(400, f"{name} must be true or false.")
        return value

    def integer(self, name: str, *, minimum: int, maximum: int) -> int:
        value = self._data.get(name)
        if value is None:
            raise ApiError(400, f"{name} is required.")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApiError(400, f"{name} must be a whole number.")
        if not minimum <= value <= maximum:
            raise ApiError(400, f"{name} must be between {minimum} and {maximum}.")
        return value

    def array(self, name: str, *, max_items: int) -> list[Any]:
        value = self._data.get(name)
        if value is None:
            raise ApiError(400, f"{name} is required.")
        if not isinstance(value, list):
            raise ApiError(400, f"{name} must be an array.")
        if len(value) > max_items:
            raise ApiError(400, f"{name} must have at most {max_items} entries.")
        return value
