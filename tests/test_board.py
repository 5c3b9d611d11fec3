"""The pickup board's API (issue 27): display links made, listed and revoked by a store's staff; a
link opens its store's board (short numbers only) and nothing else; the board's settings."""

from __future__ import annotations

import pytest

from server.services.board import short_number
from tests.support import Api


async def make_display(api: Api, store, label: str | None = "Counter TV") -> tuple[dict, str]:
    response = await api.post(f"/api/stores/{store.id}/displays", store.staff,
                              json={"label": label} if label else None)
    assert response.status_code == 201, response.text
    data = response.json()["data"]
    secret = data["url"].split("#key=", 1)[1]
    return data, secret


def display(secret: str) -> dict[str, str]:
    return {"X-Display-Key": secret}


def test_short_number_is_the_trailing_digits():
    assert short_number("ORD-20261206-042") == "042"
    assert short_number("ORD-20261206-1042") == "1042"
    assert short_number("X") == "X"


async def test_a_display_link_opens_the_board_with_short_numbers_only(api: Api):
    store = await api.store()
    customer = await api.customer(name="Zubair Quraishi")
    orders = [await api.place_order(customer, store) for _ in range(3)]
    await api.advance(store, orders[0]["id"], "paid", "processing", "ready")
    await api.advance(store, orders[1]["id"], "paid")
    data, secret = await make_display(api, store)
    assert f"/board/{store.id}#key=opd_" in data["url"]
    assert data["label"] == "Counter TV" and data["createdByName"] == "Kavya Staff"

    response = await api.get(f"/api/stores/{store.id}/board", headers=display(secret))
    assert response.status_code == 200, response.text
    board = response.json()["data"]
    assert board["ready"] == [short_number(orders[0]["orderNumber"])]
    assert board["preparing"] == [short_number(orders[1]["orderNumber"])]  # placed, unaccepted: not yet
    assert set(board) == {"storeName", "preparing", "ready", "announce"}
    text = response.text
    otp = await api.otp_of(customer, orders[0]["id"])
    for secret_thing in ("Zubair", otp, orders[0]["orderNumber"], orders[0]["id"], "Paneer"):
        assert secret_thing not in text


async def test_a_display_link_reads_nothing_else_and_stops_once_revoked(api: Api):
    store = await api.store()
    other = await api.store()
    customer = await api.customer()
    order = await api.place_order(customer, store)
    data, secret = await make_display(api, store)
    # Not a bearer token anywhere, and not another store's board.
    for path in ("/api/orders", f"/api/orders/{order['id']}", f"/api/orders/{order['id']}/poll-status",
                 f"/api/stores/{store.id}/events", f"/api/stores/{store.id}/report", "/api/users/me",
                 f"/api/stores/{store.id}/displays"):
        for headers in ({"Authorization": f"Bearer {secret}"}, display(secret)):
            response = await api.get(path, headers=headers)
            assert response.status_code == 401, (path, headers, response.text)
    assert (await api.get(f"/api/stores/{other.id}/board", headers=display(secret))).status_code == 401
    assert (await api.get(f"/api/stores/{store.id}/board/events?token={secret}")).status_code == 401

    listed = await api.get(f"/api/stores/{store.id}/displays", store.staff)
    assert [d["id"] for d in listed.json()["data"]] == [data["id"]]
    assert "url" not in listed.json()["data"][0] and secret not in listed.text
    gone = await api.request("DELETE", f"/api/stores/{store.id}/displays/{data['id']}", store.staff)
    assert gone.status_code == 200, gone.text
    response = await api.get(f"/api/stores/{store.id}/board", headers=display(secret))
    assert response.status_code == 401 and "revoked" in response.json()["message"]
    again = await api.request("DELETE", f"/api/stores/{store.id}/displays/{data['id']}", store.staff)
    assert again.status_code == 404


async def test_only_the_stores_staff_and_admins_manage_its_displays(api: Api):
    store = await api.store()
    other = await api.store()
    customer = await api.customer()
    data, _ = await make_display(api, store, label=None)
    assert data["label"] is None
    for actor in (customer, other.staff):
        assert (await api.post(f"/api/stores/{store.id}/displays", actor)).status_code == 403
        assert (await api.get(f"/api/stores/{store.id}/displays", actor)).status_code == 403
        assert (await api.request("DELETE", f"/api/stores/{store.id}/displays/{data['id']}", actor)).status_code == 403
        assert (await api.patch(f"/api/stores/{store.id}/board", actor, json={"announce": True})).status_code == 403
        assert (await api.get(f"/api/stores/{store.id}/board", actor)).status_code == 403
    admin = await api.admin()
    assert (await api.get(f"/api/stores/{store.id}/displays", admin)).status_code == 200
    assert (await api.get(f"/api/stores/{store.id}/board", store.staff)).status_code == 200  # the kitchen's preview
    assert (await api.post(f"/api/stores/{store.id}/displays", store.staff, json={"label": ""})).status_code == 201
    assert (await api.post(f"/api/stores/{store.id}/displays", store.staff,
                           json={"label": "x" * 61})).status_code == 400
    assert (await api.request("DELETE", f"/api/stores/{store.id}/displays/nope", store.staff)).status_code == 404


@pytest.mark.parametrize("body", [{}, {"announce": None}, {"announce": "yes"}, {"announce": 1}])
async def test_bad_board_settings_are_400_and_change_nothing(api: Api, body):
    store = await api.store()
    response = await api.patch(f"/api/stores/{store.id}/board", store.staff, json=body)
    assert response.status_code == 400, response.text
    board = await api.get(f"/api/stores/{store.id}/board", store.staff)
    assert board.json()["data"]["announce"] is False


async def test_the_store_turns_announcements_on_for_its_boards(api: Api):
    store = await api.store()
    _, secret = await make_display(api, store)
    response = await api.patch(f"/api/stores/{store.id}/board", store.staff, json={"announce": True})
    assert response.status_code == 200 and response.json()["data"] == {"announce": True}
    board = await api.get(f"/api/stores/{store.id}/board", headers=display(secret))
    assert board.json()["data"]["announce"] is True
