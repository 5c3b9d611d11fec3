"""`GET /api/payments/upi-qr`: the checkout's UPI link drawn as a QR code by the server."""

from __future__ import annotations

import segno

from server.domain.upi import payment_link


async def test_a_checkouts_upi_link_is_drawn_as_an_svg_qr_code(api):
    link = payment_link("cafe@upi", "Campus Cafe", 28950, "CBPAY0123456789")
    response = await api.get("/api/payments/upi-qr", params={"link": link})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("image/svg+xml")
    assert response.text.startswith("<svg") and 'xmlns="http://www.w3.org/2000/svg"' in response.text
    expected = segno.make(link, error="m")
    assert f'width="{expected.symbol_size(scale=6, border=4)[0]}"' in response.text


async def test_anything_but_a_short_upi_pay_link_is_a_400_naming_the_field(api):
    for link in ("", "https://example.test/pay", "upi://pay?" + "a" * 600, "upi://pay?pa=x\n"):
        response = await api.get("/api/payments/upi-qr", params={"link": link})
        assert (response.status_code, response.json()["message"]) == (
            400, "link must be a upi://pay link of at most 512 characters."), link
