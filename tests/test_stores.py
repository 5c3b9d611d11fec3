"""Stores and menus: public reads, admin and staff writes, money at the edge."""

from __future__ import annotations


async def test_public_reads(api):
    store = await api.store()
    listing = (await api.get("/api/stores")).json()["data"]
    assert store.id in [s["id"] for s in listing]
    one = (await api.get(f"/api/stores/{store.id}")).json()["data"]
    assert one["location"] == "Building A, Ground Floor"
    menu = (await api.get(f"/api/stores/{store.id}/menu")).json()["data"]
    assert {item["name"]: item["price"] for item in menu} == {"Paneer Burger": 120, "French Fries": 80,
                                                              "Cold Coffee": 49.5}
    assert (await api.get("/api/stores/65f7a8b9c1234567890abcde")).status_code == 404
    assert (await api.get("/api/stores/nope/menu")).status_code == 404


async def test_only_admins_create_stores(api):
    store = await api.store()
    customer = await api.customer()
    for actor in (customer, store.staff):
        response = await api.post("/api/stores", actor, json={"name": "X", "location": "Y", "upiId": "z@upi"})
        assert response.status_code == 403


async def test_menu_writes_belong_to_that_stores_staff(api):
    store, other = await api.store(), await api.store()
    response = await api.post(f"/api/stores/{store.id}/menu", other.staff, json={"name": "Tea", "price": 10})
    assert response.status_code == 403
    response = await api.patch(f"/api/menu/{store.menu[0]['id']}", other.staff, json={"price": 1})
    assert response.status_code == 403


async def test_unavailable_items_leave_the_public_menu_and_checkout(api):
    store = await api.store()
    item = store.menu[0]
    await api.patch(f"/api/menu/{item['id']}", store.staff, json={"isAvailable": False})
    menu = (await api.get(f"/api/stores/{store.id}/menu")).json()["data"]
    assert item["id"] not in [m["id"] for m in menu]
    customer = await api.customer()
    response = await api.checkout(customer, store)
    assert response.status_code == 400
    assert response.json()["message"] == "Paneer Burger is currently unavailable."


async def test_prices_must_be_positive_with_two_decimals(api):
    store = await api.store()
    for price in (0, -5, 10.555, "abc", True, None, 10**9):
        response = await api.post(f"/api/stores/{store.id}/menu", store.staff, json={"name": "Tea", "price": price})
        assert response.status_code == 400, price


async def test_checkout_session_shape(api):
    store = await api.store()
    customer = await api.customer()
    response = await api.checkout(customer, store, [(0, 2), (2, 1)])
    assert response.status_code == 200
    data = response.json()["data"]
    assert set(data) >= {"checkoutToken", "paymentReference", "expiresInSeconds", "totalAmount", "items", "store",
                         "noShowPolicy", "payment"}
    assert data["expiresInSeconds"] == 900 and data["totalAmount"] == 289.5
    assert data["noShowPolicy"] == {"trustTier": "good", "noShowCount": 0, "requiresCommitment": False,
                                    "commitmentWindowMinutes": 4, "unpaidTimeoutMinutes": 8,
                                    "readyTimeoutMinutes": 20, "requiresCommitmentBeforePrep": False}
    assert data["payment"]["mode"] == "direct_store_upi"
    assert data["payment"]["upiLink"].startswith("upi://pay?pa=") and "am=289.50" in data["payment"]["upiLink"]


async def test_checkout_rejects_bad_carts_naming_the_problem(api):
    store, other = await api.store(), await api.store()
    customer = await api.customer()
    item = store.menu[0]["id"]
    cases = [
        ({"storeId": store.id, "items": []}, "Cart is empty. Add at least one item."),
        ({"storeId": store.id, "items": [{"menuItemId": item, "quantity": 0}]}, "Quantity must be between 1 and 50."),
        ({"storeId": store.id, "items": [{"menuItemId": item, "quantity": 51}]}, "Quantity must be between 1 and 50."),
        ({"storeId": store.id, "items": [{"menuItemId": item, "quantity": "2"}]},
         "items[0].quantity must be a whole number."),
        ({"storeId": store.id, "items": [{"menuItemId": other.menu[0]["id"], "quantity": 1}]},
         f"Menu item {other.menu[0]['id']} does not belong to this store."),
        ({"storeId": store.id, "items": [{"menuItemId": "65f7a8b9c1234567890abcde", "quantity": 1}]},
         "Menu item 65f7a8b9c1234567890abcde was not found."),
        ({"storeId": "65f7a8b9c1234567890abcde", "items": [{"menuItemId": item, "quantity": 1}]}, "Store not found."),
        ({"items": [{"menuItemId": item, "quantity": 1}]}, "storeId is required."),
        ({"storeId": store.id}, "items is required."),
    ]
    for body, message in cases:
        response = await api.post("/api/orders/checkout-session", customer, json=body)
        assert response.status_code == 400, body
        assert response.json() == {"success": False, "message": message}, body


async def test_inactive_store_takes_no_orders(api):
    admin = await api.admin()
    response = await api.post("/api/stores", admin, json={"name": "Closed", "location": "B", "upiId": "c@upi",
                                                          "isActive": False})
    store_id = response.json()["data"]["id"]
    item = (await api.post(f"/api/stores/{store_id}/menu", admin, json={"name": "Tea", "price": 10})).json()["data"]
    customer = await api.customer()
    response = await api.post("/api/orders/checkout-session", customer,
                              json={"storeId": store_id, "items": [{"menuItemId": item["id"], "quantity": 1}]})
    assert response.status_code == 400
    assert response.json()["message"] == "This store is not accepting orders right now."
