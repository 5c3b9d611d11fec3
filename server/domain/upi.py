"""Direct-to-store UPI payments: payment references, payment links and transaction ids."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

from server.domain import messages
from server.domain.errors import Invalid

TRANSACTION_ID = re.compile(r"[A-Za-z0-9]{8,40}")


def new_payment_reference() -> str:
    """What the customer writes in the UPI note, so the store can match the payment: CBPAY + 10 hex."""
    return "CBPAY" + secrets.token_hex(5).upper()


def payment_link(upi_id: str, payee: str, total_paise: int, reference: str) -> str:
    """A `upi://pay` link that opens the customer's UPI app with the amount and note filled in."""
    return "upi://pay?" + urlencode({"pa": upi_id, "pn": payee, "am": f"{total_paise / 100:.2f}",
                                     "cu": "INR", "tn": reference})


MAX_LINK_LENGTH = 512


def is_payment_link(value: str) -> bool:
    """Whether `value` is a `upi://pay` link short enough to draw as a QR code."""
    # Printable ASCII: a UPI link's parameters are percent-encoded, and the document says the same.
    return value.startswith("upi://pay?") and len(value) <= MAX_LINK_LENGTH and all(" " <= c <= "~" for c in value)


def normalise_transaction_id(value: object) -> str | None:
    """Upper-cased UPI transaction id, None when not provided; 400 when malformed."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not TRANSACTION_ID.fullmatch(value):
        raise Invalid(messages.TRANSACTION_ID_INVALID)
    return value.upper()
