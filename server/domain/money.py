"""Money is integer paise inside and rupees (at most 2 decimals) at the JSON edge."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

MAX_PRICE_PAISE = 10_000_000  # ₹100,000: no campus menu item costs more.


class InvalidAmount(ValueError):
    """A price that is not a positive amount of rupees with at most 2 decimals."""


def rupees_to_paise(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidAmount("price must be a number")
    try:
        amount = Decimal(str(value))
    except InvalidOperation as exc:
        raise InvalidAmount("price must be a number") from exc
    if not amount.is_finite() or amount <= 0:
        raise InvalidAmount("price must be greater than 0")
    if amount != amount.quantize(Decimal("0.01")):
        raise InvalidAmount("price must have at most 2 decimals")
    paise = int((amount * 100).quantize(Decimal("1"), rounding=ROUND_HALF_UP))
    if paise > MAX_PRICE_PAISE:
        raise InvalidAmount("price is too large")
    return paise


def paise_to_rupees(paise: int) -> int | float:
    """`12000 → 120`, `4950 → 49.5`: whole rupees stay integers, as in seed 001."""
    if paise % 100 == 0:
        return paise // 100
    return paise / 100
