"""Secrets never reach a log line: a filter that redacts tokens, passwords and codes.

Installed on the root and uvicorn loggers and on their handlers (`install_secret_filter`), so
it applies to uvicorn's own lines (its WebSocket line carries the request's query string) and
to every library's records that propagate to the root, however the app is served.
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

# `key=value` in a query string or a message: token=, access_token=, ticket=, otp=, password=…
_QUERY_VALUE = re.compile(
    r"(?i)(\b[\w-]*(?:token|ticket|passw(?:or)?d|secret|otp)=)(?!\[redacted\])[^&\s\"',;]+")
# `"password": "…"`, `'refreshToken': '…'`, `otp: 123456` in JSON, dict reprs and free text, and
# `\"password_hash\": \"…\"` in JSON inside JSON (the MongoDB driver's debug log of commands).
_KEYED_VALUE = re.compile(
    r"(?i)((?:\\?[\"'])?\b[\w-]*(?:token|ticket|passw(?:or)?d\w*|secret|otp|authorization|hash|nonce)"
    r"(?:\\?[\"'])?\s*[:=]\s*)"
    r"(?!\[redacted\])(\\\"(?:(?!\\\").)*\\\"|\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'"
    r"|(?:bearer\s+|basic\s+)?[^\s,&;}\])]+)")
# An `Authorization` header value in any other shape, e.g. (b'authorization', b'Bearer …').
_SCHEME_VALUE = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
# A JWT anywhere, whatever surrounds it.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")
# A webhook signing secret (Standard Webhooks' `whsec_` + base64) anywhere.
_WEBHOOK_SECRET = re.compile(r"\bwhsec_[A-Za-z0-9+/=]+")


def _keyed(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = '\\"' if value.startswith('\\"') else value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}{REDACTED}{quote}"


def redact(text: str) -> str:
    """The text with every token, password, code and credential value replaced."""
    if not text:
        return text
    text = _JWT.sub(REDACTED, text)
    text = _WEBHOOK_SECRET.sub(REDACTED, text)
    text = _QUERY_VALUE.sub(lambda m: m.group(1) + REDACTED, text)
    text = _KEYED_VALUE.sub(_keyed, text)
    return _SCHEME_VALUE.sub(lambda m: f"{m.group(1)} {REDACTED}", text)


def _redact_arg(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value  # numbers keep their `%d` formatting (uvicorn's access formatter needs them)
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (bytes, bytearray)):
        return redact(value.decode("latin-1"))
    return redact(str(value))


class SecretFilter(logging.Filter):
    """Rewrites a record's message, arguments, traceback and stack in place; drops nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_secrets_redacted", False):
            return True
        record._secrets_redacted = True
        try:
            if record.name == "uvicorn.access" and isinstance(record.args, tuple):
                # Its formatter unpacks the arguments (client, method, path, version, status).
                record.args = tuple(_redact_arg(arg) for arg in record.args)
            else:
                # The whole message: a secret may sit half in the format, half in an argument.
                try:
                    message = record.getMessage()
                except Exception:  # a bad format: the handler's error report would print the args
                    message = f"{record.msg} {record.args!r}"
                clean = redact(message)
                if clean != message:
                    record.msg, record.args = clean, None
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                record.exc_text = redact(record.exc_text)
            if record.stack_info:
                record.stack_info = redact(record.stack_info)
        except Exception:  # a record that cannot be formatted is the handler's to report
            pass
        return True


_FILTER = SecretFilter()
LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "orderpulse")


def install_secret_filter() -> None:
    """Add the filter to the root and uvicorn loggers and to each of their handlers; idempotent,
    and called again once the server configured its logging (uvicorn replaces its handlers)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
        for handler in logger.handlers:
            if _FILTER not in handler.filters:
                handler.addFilter(_FILTER)
