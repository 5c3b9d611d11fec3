"""Reading request bodies: size limit, JSON, and typed fields with errors that name the field."""

from __future__ import annotations

import re
from typing import Any

import orjson
from email_validator import EmailNotValidError, validate_email
from starlette.requests import Request

from server.domain import messages
from server.domain.errors import ApiError

MAX_STRING = 500
# Longer than any number a request needs, and far below `int()`'s 4,300-digit limit.
MAX_DIGITS = 18
# Control characters (C0, DEL, C1), bidirectional marks, embeddings, overrides and isolates (the
# "Trojan Source" characters that make a name display differently from what it is), and the
# Unicode line and paragraph separators. A newline is allowed only where `multiline=True`.
_UNSAFE_TEXT = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_UNSAFE_MULTILINE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def ascii_int(raw: str | None) -> int | None:
    """A non-negative whole number written in ASCII digits (at most 18), else None.

    `str.isdigit()` also accepts `²` and `١`, which `int()` then rejects or reads as digits.
    """
    if raw is None or not 0 < len(raw) <= MAX_DIGITS or not raw.isascii() or not raw.isdigit():
        return None
    return int(raw)


def query_int(raw: str | None, name: str, default: int, minimum: int, maximum: int) -> int:
    """A query parameter in `[minimum, maximum]`; absent or empty means `default`; else a 400."""
    if raw is None or raw == "":
        return default
    value = ascii_int(raw)
    if value is None or not minimum <= value <= maximum:
        raise ApiError(400, f"{name} must be a whole number from {minimum} to {maximum}.")
    return value


def has_unsafe_characters(value: str, *, multiline: bool = False) -> bool:
    """True when `value` holds a control, bidirectional-formatting or separator character."""
    return (_UNSAFE_MULTILINE if multiline else _UNSAFE_TEXT).search(value) is not None


async def request_fields(request: Request) -> Fields:
    """The request's JSON object, within the configured body limit."""
    settings = request.app.state.runtime.settings
    return Fields(await read_json(request, settings.max_body_bytes),
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


class Fields:
    """Typed access to a JSON object's fields; unknown fields are ignored."""

    def __init__(self, data: dict[str, Any], *, test_environment: bool = False) -> None:
        self._data = data
        # Tests use the reserved `.test` domain for their addresses; nothing else may.
        self._test_environment = test_environment

    def present(self, name: str) -> bool:
        """True when the field was sent, even as `null`."""
        return name in self._data

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def has(self, name: str) -> bool:
        return self._data.get(name) is not None

    def string(self, name: str, *, required: bool = True, max_length: int = MAX_STRING,
               choices: tuple[str, ...] | None = None, multiline: bool = False) -> str | None:
        """A trimmed, non-empty text without control or bidirectional-formatting characters;
        `multiline` allows newlines (`\r\n` is stored as `\n`)."""
        value = self._data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise ApiError(400, f"{name} is required.")
            return None
        if not isinstance(value, str):
            raise ApiError(400, f"{name} must be a string.")
        if multiline:
            value = value.replace("\r\n", "\n")
        # Checked before trimming: a tab or newline at either end is refused like one inside.
        if has_unsafe_characters(value, multiline=multiline):
            raise ApiError(400, messages.FIELD_UNSAFE_CHARACTERS.format(field=name))
        value = value.strip()
        if len(value) > max_length:
            raise ApiError(400, f"{name} must be at most {max_length} characters.")
        if choices is not None and value not in choices:
            raise ApiError(400, f"{name} must be one of: {', '.join(choices)}.")
        return value

    def email(self, name: str) -> str:
        """A syntactically valid address, normalised (domain lower-cased, Unicode NFC); no DNS."""
        value = self.string(name, max_length=254)
        assert value is not None
        try:
            checked = validate_email(value, check_deliverability=False, test_environment=self._test_environment)
        except EmailNotValidError:
            raise ApiError(400, messages.FIELD_NOT_EMAIL.format(field=name)) from None
        return checked.normalized

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
