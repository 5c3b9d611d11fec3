"""Reading requests: the body within its size limit as JSON, parsed by its request model
(server/http/requests.py), and the whole numbers of query strings and headers."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from server.domain import messages
from server.http.body_rules import Body, parse
from server.http.errors import ApiError
from server.http import context

# Longer than any number a request needs, and far below `int()`'s 4,300-digit limit.
MAX_DIGITS = 18


def ascii_int(raw: str | None) -> int | None:
    """A non-negative whole number written in ASCII digits (at most 18), else None.

    `str.isdigit()` also accepts `²` and `١`, which `int()` then rejects or reads as digits.
    """
    if raw is None or not 0 < len(raw) <= MAX_DIGITS or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


def query_int(raw: str | None, name: str, default: int, minimum: int, maximum: int) -> int:
    """A query parameter in `[minimum, maximum]`; absent means `default`; anything else, an empty
    `?page=` included, is a 400 (the document types it an integer, which "" is not)."""
    if raw is None:
        return default
    value = ascii_int(raw)
    if value is None or not minimum <= value <= maximum:
        raise ApiError(400, messages.QUERY_NOT_NUMBER.format(name=name, minimum=minimum, maximum=maximum))
    return value


async def read_body(request: Request, model: type[Body]) -> Body:
    """The request's JSON object as `model`: 413 past the body limit, 400 naming the first bad field."""
    settings = context.runtime(request).settings
    # Tests use the reserved `.test` domain for their addresses; nothing else may.
    return parse(model, await read_json(request, settings.max_body_bytes),
                 test_environment=settings.orderpulse_env == "test")


async def read_json(request: Request, max_bytes: int) -> dict[str, Any]:
    """The JSON object of the body; `{}` for an empty body; 413 past the limit; 400 if malformed."""
    declared = ascii_int(request.headers.get("content-length"))
    if declared is not None and declared > max_bytes:  # anything else is caught while reading
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
