"""The admin console's routes and the kitchen's store controls: who may call them, bad input,
and what each changes (issue 11)."""

from __future__ import annotations

import asyncio

import orjson

from server.services.changes import catalog_channel
from tests.deadline_helpers import no_show
from tests.support import until

NOT_AN_ID = "65f7a8b9c1234567890abcde"


async def people(api):
    admin = await api.admin()
    store = await api.store(admin)
    return admin, store, await api.customer()


# --- PATCH /api/stores/{store_id} ---------------------------------------------------------------

async def test_store_staff_close_and_reopen_their_store_and_the_change_is_published(api):
    admin, store, customer = await people(api)
    published: list[dict] = []
    await api.runtime.broker.subscribe(catalog_channel(store.id), lambda channel, raw: published.append(orjson.loads(raw)))

    response = await api.patch(f"/api/stores/{store.id}", store.staff, json={"isActive": False})
    assert response.status_code == 200, response.text
    assert response.json()["data"]["isActive"] is False
    await until(lambda: published and published[-1]["store"]["isActive"] is False, message="the closed store published")
    refused = await api.checkout(customer, store)
    assert refused.status_code == 400 and refused.json()["message"] == "This store is not accepting orders right now."

    response = await api.patch(f"/api/stores/{store.id}", store.staff, json={"isActive": True})
    assert response.json()["data"]["isActive"] is True
    await until(lambda: published[-1]["store"]["isActive"] is True, message="the reopened store published")
    assert (await api.checkout(customer, store)).status_code == 200


async def test_a_store_is_edited_field_by_field_and_a_blank_description_removes_it(api):
    admin, store, _ = await people(api)
    response = await api.patch(f"/api/stores/{store.id}", admin, json={
        "name": "Chai Point", "description": "Tea and snacks\nsince 1999", "upiId": "chai@upi"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["name"], data["description"], data["upiId"]) == ("Chai Point", "Tea and snacks\nsince 1999", "chai@upi")
    assert data["location"] == "Building A, Ground Floor"
    response = await api.patch(f"/api/stores/{store.id}", store.staff, json={"description": ""})
    assert response.json()["data"]["description"] is None
    assert (await api.get(f"/api/stores/{store.id}")).json()["data"]["description"] is None


BAD_STORE_CHANGES = [
    ({}, "Send at least one of: name, location, description, upiId, isActive."),
    ({"name": ""}, "name is required."),
    ({"isActive": "no"}, "isActive must be true or false."),
    ({"upiId": "x" * 101}, "upiId must be at most 100 characters."),
    ({"location": "a\u202eb"}, "location must not contain control or bidirectional formatting characters."),
    ({"name": "Fine", "description": 7}, "description must be a string."),
]


async def test_bad_store_changes_are_refused_naming_the_field_and_change_nothing(api):
    admin, store, _ = await people(api)
    before = (await api.get(f"/api/stores/{store.id}")).json()["data"]
    for body, message in BAD_STORE_CHANGES:
        response = await api.patch(f"/api/stores/{store.id}", admin, json=body)
        assert (response.status_code, response.json()["message"]) == (400, message), body
    assert (await api.get(f"/api/stores/{store.id}")).json()["data"] == before


async def test_only_the_stores_own_staff_or_an_admin_may_change_it(api):
    admin, store, customer = await people(api)
    other = await api.store(admin)
    for actor in (customer, other.staff):
        response = await api.patch(f"/api/stores/{store.id}", actor, json={"isActive": False})
        assert response.status_code == 403, response.text
    assert (await api.patch(f"/api/stores/{store.id}", json={"isActive": False})).status_code == 401
    assert (await api.patch(f"/api/stores/{NOT_AN_ID}", admin, json={"isActive": False})).status_code == 404
    assert (await api.get(f"/api/stores/{store.id}")).json()["data"]["isActive"] is True


async def test_a_menu_change_from_the_kitchen_is_published(api):
    _, store, _ = await people(api)
    published: list[dict] = []
    await api.runtime.broker.subscribe(catalog_channel(store.id), lambda channel, raw: published.append(orjson.loads(raw)))
    item = store.menu[0]
    response = await api.patch(f"/api/menu/{item['id']}", store.staff, json={"isAvailable": False, "price": 99})
    assert response.status_code == 200, response.text

    def sold_out() -> bool:
        return bool(published) and any(entry["id"] == item["id"] and not entry["isAvailable"] and entry["price"] == 99
                                       for entry in published[-1]["menu"])
    await until(sold_out, message="the sold-out item published")


# --- admins only ----------------------------------------------------------------------------------

ADMIN_ONLY = [
    ("GET", "/api/admin/stores", None),
    ("GET", "/api/admin/customers", None),
    ("GET", "/api/admin/customers/{customer}/no-shows", None),
    ("POST", "/api/admin/orders/{order}/clear-no-show", {"reason": "Was there"}),
    ("GET", "/api/admin/clients", None),
    ("POST", "/api/admin/clients", {"name": "Campus App"}),
    ("POST", "/api/admin/clients/{client}/revoke", None),
]


async def test_non_admins_get_403_and_see_nothing_of_the_admin_routes(api):
    admin, store, customer = await people(api)
    order = await api.place_order(customer, store)
    client = (await api.post("/api/admin/clients", admin, json={"name": "Existing"})).json()["data"]
    values = {"customer": customer.id, "order": order["id"], "client": client["clientId"]}
    for method, template, body in ADMIN_ONLY:
        path = template.format(**values)
        for actor in (customer, store.staff):
            response = await api.request(method, path, actor, json=body)
            assert response.status_code == 403, (path, response.text)
            assert set(response.json()) == {"success", "message"}, path
        assert (await api.request(method, path, json=body)).status_code == 401, path
    clients = (await api.get("/api/admin/clients", admin)).json()["data"]
    assert [(c["name"], c["isActive"]) for c in clients] == [("Existing", True)]


# --- stores and customers -----------------------------------------------------------------------

async def test_admins_list_every_store_closed_ones_too(api):
    admin, store, _ = await people(api)
    await api.patch(f"/api/stores/{store.id}", admin, json={"isActive": False})
    listed = {s["id"]: s["isActive"] for s in (await api.get("/api/admin/stores", admin)).json()["data"]}
    assert listed[store.id] is False
    assert store.id not in {s["id"] for s in (await api.get("/api/stores")).json()["data"]}


async def test_customers_are_listed_with_their_trust_standing(api):
    admin, store, customer = await people(api)
    response = await api.get("/api/admin/customers", admin, params={"search": customer.user["email"]})
    assert response.status_code == 200, response.text
    page = response.json()["data"]
    assert page["total"] == 1
    row = page["customers"][0]
    assert (row["id"], row["trustTier"], row["noShowCount"], row["orderingRestrictedUntil"]) == (
        customer.id, "good", 0, None)
    # Staff and admins are not customers.
    everyone = (await api.get("/api/admin/customers", admin, params={"limit": 100})).json()["data"]["customers"]
    assert {row["role"] for row in everyone} <= {"student", "faculty"}
    bad = await api.get("/api/admin/customers", admin, params={"limit": "0"})
    assert (bad.status_code, bad.json()["message"]) == (400, "limit must be a whole number from 1 to 100.")
    assert (await api.get(f"/api/admin/customers/{store.staff.id}/no-shows", admin)).status_code == 404


async def test_an_admin_clears_a_wrong_no_show_with_who_and_why_and_the_restriction_ends(api_factory, clock):
    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    admin, store, customer = await people(api)
    orders = [await no_show(api, store, customer, clock) for _ in range(3)]
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert (profile["trustTier"], profile["noShowCount"]) == ("restricted", 3)

    listed = (await api.get(f"/api/admin/customers/{customer.id}/no-shows", admin)).json()["data"]
    assert listed["customer"]["trustTier"] == "restricted" and listed["customer"]["orderingRestrictedUntil"]
    assert {n["orderId"] for n in listed["noShows"]} == {o["id"] for o in orders}

    response = await api.post(f"/api/admin/orders/{orders[-1]['id']}/clear-no-show", admin,
                              json={"reason": "Picked up; the code was entered on paper"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert response.json()["message"] == "No-show cleared."
    assert (data["noShow"]["clearedBy"], data["noShow"]["clearedByName"], data["noShow"]["clearedReason"]) == (
        admin.id, "Ada Admin", "Picked up; the code was entered on paper")
    assert data["noShow"]["recordedAt"] and data["noShow"]["clearedAt"]
    assert (data["customer"]["trustTier"], data["customer"]["noShowCount"]) == ("watch", 2)
    profile = (await api.get("/api/users/me", customer)).json()["data"]
    assert (profile["trustTier"], profile["noShowCount"], profile["orderingRestrictedUntil"]) == ("watch", 2, None)
    assert (await api.checkout(customer, store)).status_code == 200

    again = await api.post(f"/api/admin/orders/{orders[-1]['id']}/clear-no-show", admin, json={"reason": "twice"})
    assert (again.status_code, again.json()["message"]) == (409, "This order has no recorded no-show to clear.")
    listed = (await api.get(f"/api/admin/customers/{customer.id}/no-shows", admin)).json()["data"]["noShows"]
    assert sum(1 for n in listed if n["clearedAt"]) == 1


async def test_clearing_a_no_show_needs_a_reason_and_a_real_order(api):
    admin, store, customer = await people(api)
    order = await api.place_order(customer, store)
    path = f"/api/admin/orders/{order['id']}/clear-no-show"
    response = await api.post(path, admin, json={"reason": "  "})
    assert (response.status_code, response.json()["message"]) == (400, "reason is required.")
    response = await api.post(path, admin, json={"reason": "Not a no-show"})
    assert response.status_code == 409
    response = await api.post(f"/api/admin/orders/{NOT_AN_ID}/clear-no-show", admin, json={"reason": "x"})
    assert response.status_code == 404
    response = await api.post("/api/admin/orders/nope/clear-no-show", admin, json={"reason": "x"})
    assert response.status_code == 404


# --- partner clients ----------------------------------------------------------------------------

async def test_an_admin_creates_and_revokes_a_partner_client_and_v1_follows(api):
    admin, store, customer = await people(api)
    response = await api.post("/api/admin/clients", admin, json={"name": "CampusBite"})
    assert response.status_code == 201, response.text
    client = response.json()["data"]
    assert client["clientId"].startswith("opc_") and client["isActive"] is True
    headers = {"X-Client-ID": client["clientId"]}
    order = await api.place_order(customer, store)
    assert (await api.get(f"/v1/order/{order['id']}", customer, headers=headers)).status_code == 200

    response = await api.post(f"/api/admin/clients/{client['clientId']}/revoke", admin)
    assert response.status_code == 200, response.text
    assert response.json()["data"]["isActive"] is False and response.json()["data"]["revokedAt"]
    assert (await api.get(f"/v1/order/{order['id']}", customer, headers=headers)).status_code == 498
    assert (await api.post("/api/admin/clients/opc_unknown/revoke", admin)).status_code == 404
    response = await api.post("/api/admin/clients", admin, json={"name": ""})
    assert (response.status_code, response.json()["message"]) == (400, "name is required.")
    assert len((await api.get("/api/admin/clients", admin)).json()["data"]) == 1


async def test_two_admins_revoking_at_once_keep_one_revocation_time(api):
    admin, _, _ = await people(api)
    client = (await api.post("/api/admin/clients", admin, json={"name": "Race"})).json()["data"]
    path = f"/api/admin/clients/{client['clientId']}/revoke"
    first, second = await asyncio.gather(api.post(path, admin), api.post(path, admin))
    assert first.json()["data"]["revokedAt"] == second.json()["data"]["revokedAt"]


# --- the document and the pages -------------------------------------------------------------------

async def test_the_new_routes_answer_as_the_openapi_document_says(api_factory, clock):
    from server.http.openapi import openapi_document
    from tests.test_openapi import check

    api = await api_factory(clock=clock, ready_no_show_timeout_minutes=0.01)
    admin, store, customer = await people(api)
    order = await no_show(api, store, customer, clock)
    admin = await api.login(admin.user["email"])  # a fresh token on the moved clock
    client = await api.post("/api/admin/clients", admin, json={"name": "Doc"})
    calls = [
        ("/api/stores/{store_id}", "patch", await api.patch(f"/api/stores/{store.id}", admin, json={"description": "x"})),
        ("/api/stores/{store_id}", "patch", await api.patch(f"/api/stores/{store.id}", admin, json={})),
        ("/api/admin/stores", "get", await api.get("/api/admin/stores", admin)),
        ("/api/admin/customers", "get", await api.get("/api/admin/customers", admin)),
        ("/api/admin/customers/{user_id}/no-shows", "get",
         await api.get(f"/api/admin/customers/{customer.id}/no-shows", admin)),
        ("/api/admin/orders/{order_id}/clear-no-show", "post",
         await api.post(f"/api/admin/orders/{order['id']}/clear-no-show", admin, json={"reason": "was there"})),
        ("/api/admin/orders/{order_id}/clear-no-show", "post",
         await api.post(f"/api/admin/orders/{order['id']}/clear-no-show", admin, json={"reason": "again"})),
        ("/api/admin/clients", "post", client),
        ("/api/admin/clients", "get", await api.get("/api/admin/clients", admin)),
        ("/api/admin/clients/{client_id}/revoke", "post",
         await api.post(f"/api/admin/clients/{client.json()['data']['clientId']}/revoke", admin)),
        ("/api/admin/clients/{client_id}/revoke", "post", await api.post("/api/admin/clients/nope/revoke", admin)),
    ]
    document = openapi_document()
    for path, method, response in calls:
        check(document, path, method, response)
    assert [response.status_code for *_, response in calls] == [200, 400, 200, 200, 200, 200, 409, 201, 200, 200, 404]


async def test_unknown_browser_paths_get_the_html_404_page_and_api_paths_keep_their_errors(api):
    page = await api.get("/menu/nowhere")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text and 'href="/"' in page.text and "<title>" in page.text
    assert (await api.get("/api/nowhere")).json() == {"success": False, "message": "Not found."}
    assert "error" in (await api.get("/v1/nowhere")).json()
    assert (await api.get("/static/nowhere.js")).headers["content-type"].startswith("application/json")
    assert (await api.post("/menu/nowhere")).headers["content-type"].startswith("application/json")
    icon = await api.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    admin_page = await api.get("/admin")
    assert admin_page.status_code == 200 and "<title>Admin console · OrderPulse</title>" in admin_page.text
