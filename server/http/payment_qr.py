"""`GET /api/payments/upi-qr?link=`: a `upi://pay` link as a QR code (SVG), for paying from a
second device; drawn by the server (server/services/payment_qr.py), so the checkout page loads
nothing from another host."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.upi import is_payment_link
from server.http.errors import ApiError
from server.http.contract import STR, ApiRoute, Operation, query_param, refusal
from server.http import context


async def upi_qr(request: Request) -> Response:
    link = request.query_params.get("link", "")
    if not is_payment_link(link):
        raise ApiError(400, messages.UPI_LINK_INVALID)
    svg = await context.runtime(request).payment_qr.svg(link, request.client.host if request.client else "")
    # Public like the menu: the link holds a store's UPI id, an amount and a payment reference,
    # nothing that signs anyone in, and the same link always draws the same image.
    return Response(svg, media_type="image/svg+xml", headers={"Cache-Control": "private, max-age=3600"})


routes = [
    ApiRoute("/api/payments/upi-qr", upi_qr, "GET", Operation(
        "A `upi://pay` link (the checkout session's `payment.upiLink`) as a QR code, for paying from a second "
        "device (public; SVG)", {
            "200": {"description": "The QR code", "content": {"image/svg+xml": {"schema": STR}}},
            "400": refusal("link is not a upi://pay link of at most 512 characters")},
        auth=False, params=(query_param("link", {"type": "string", "pattern": "^upi://pay\\?[ -~]*$",
                                                 "maxLength": 512}, required=True),))),
]
