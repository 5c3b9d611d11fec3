"""Money is integer paise inside and rupees (at most 2 decimals) at the JSON edge."""

from __future__ import annotations

from decimal import Decimal

from server.domain import messages

MAX_PRICE_PAISE = 10_000_000  # ₹100,000: no campus menu item costs more.
_MAX_RUPEES = Decimal(MAX_PRICE_PAISE) / 100
_CENT = Decimal("0.01")


class InvalidAmount(ValueError):
    """A price that is not a positive amount of rupees with at most 2 decimals."""


def rupees_to_paise(value: object) -> int:
    """A JSON number of rupees as paise; strings, booleans and null are not numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidAmount(messages.PRICE_NOT_NUMBER)
    # `str()` keeps a float's shortest decimal form: 49.5 stays 49.5, not 49.5000000000000000001.
    amount = Decimal(value) if isinstance(value, int) else Decimal(str(value))
    if not amount.is_finite():
        raise InvalidAmount(messages.PRICE_NOT_NUMBER)
    if amount <= 0:
        raise InvalidAmount(messages.PRICE_NOT_POSITIVE)
    # Checked before quantizing: a huge amount (1e26) has more digits than the decimal context holds.
    if amount > _MAX_RUPEES:
        raise InvalidAmount(messages.PRICE_TOO_LARGE.format(maximum=paise_to_rupees(MAX_PRICE_PAISE)))
    if amount != amount.quantize(_CENT):
        raise InvalidAmount(messages.PRICE_DECIMALS)
    return int(amount * 100)


def paise_to_rupees(paise: int) -> int | float:
    """`12000 → 120`, `4950 → 49.5`: whole rupees stay integers, as in seed 001."""
    if paise % 100 == 0:
        return paise // 100
    return paise / 100
