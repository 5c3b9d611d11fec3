"""A checkout's cart: its lines and their bounds."""

from __future__ import annotations

from dataclasses import dataclass

MAX_QUANTITY = 50
MAX_CART_LINES = 50


@dataclass(frozen=True)
class CartLine:
    menu_item_id: str
    quantity: int
