"""The 6-digit pickup code: derived from a random per-order nonce and the server secret (HMAC).

The database holds only the nonce, so a copy of it reveals no code (nor a hash to brute-force
offline), yet the owner sees the same code again after a reload.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


def pickup_key(server_secret: str) -> bytes:
    """The HMAC key for pickup codes, kept apart from the tokens' use of the same secret."""
    return hashlib.sha256(b"pickup-otp:" + server_secret.encode()).digest()


def new_nonce() -> str:
    """A fresh nonce for an order that became ready: a new code each time."""
    return secrets.token_hex(16)


def pickup_code(key: bytes, order_id: str, nonce: str) -> str:
    mac = hmac.new(key, f"{order_id}:{nonce}".encode(), hashlib.sha256).digest()
    return f"{int.from_bytes(mac[:8], 'big') % 1_000_000:06d}"


def codes_match(expected: str, given: str) -> bool:
    """Compared in constant time, so the answer's timing says nothing about the code."""
    return hmac.compare_digest(expected, given)
