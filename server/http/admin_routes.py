"""`/api/admin/*` beyond creating, listing and disabling accounts: staff roles, every store,
customers' trust and no-shows, partner clients. Admins only; anyone else gets a 403 and nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from server.domain import messages
from server.domain.access import CUSTOMER_ROLES, Role
from server.http import context
from server.http.body import query_int, read_body
from server.http.errors import ApiError
from server.http.contract import (
    COMMON, LIMIT, ORDER_NOT_FOUND, PAGE, ApiRoute, Operation, array, obj, query_param, ref, refusal, success,
)
from server.http.requests import AdminClientRequest, AdminRoleRequest, ClearNoShowRequest
from server.http.responses import ok
from server.http.security import authenticate
from server.services import catalog, partners
from server.views import (
    CUSTOMER_PAGE_SHAPE, admin_user_view, customer_view, no_show_view, page_view, partner_client_view, store_view,
)

if TYPE_CHECKING:
    from server.models import User
    from server.services.accounts import AccountService

MAX_SEARCH = 100


def _accounts(request: Request) -> AccountService:
    return context.runtime(request).accounts


async def change_role(request: Request) -> Response:
    """Make a member of staff an admin, or a store employee of `storeId`; the last active admin
    keeps the role (`409`)."""
    await authenticate(request, Role.ADMIN)
    body = await read_body(request, AdminRoleRequest)
    user = await _accounts(request).set_role(request.path_params["user_id"], Role(body.role), body.store_id)
    return ok(admin_user_view(user))


async def list_all_stores(request: Request) -> Response:
    """Every store, closed ones too, by name."""
    await authenticate(request, Role.ADMIN)
    return ok([store_view(store) for store in await catalog.list_stores(include_inactive=True)])


async def _customer_view(request: Request, user: User) -> dict[str, Any]:
    return customer_view(user, await _accounts(request).trust_standing(str(user.id)))


async def list_customers(request: Request) -> Response:
    """Students and faculty, newest first, with their trust standing: `?search=`, paginated."""
    await authenticate(request, Role.ADMIN)
    page = query_int(request.query_params.get("page"), "page", 1, 1, 10_000)
    limit = query_int(request.query_params.get("limit"), "limit", 20, 1, 100)
    search = (request.query_params.get("search") or "").strip() or None
    if search is not None and len(search) > MAX_SEARCH:
        raise ApiError(400, messages.QUERY_TOO_LONG.format(name="search", maximum=MAX_SEARCH))
    users, total = await _accounts(request).list_users(page=page, limit=limit, role=None, search=search,
                                                       roles=CUSTOMER_ROLES)
    customers = [await _customer_view(request, user) for user in users]
    return ok(page_view(CUSTOMER_PAGE_SHAPE, customers, page, limit, total))


async def customer_no_shows(request: Request) -> Response:
    """One customer's standing and every no-show recorded against them, cleared ones included."""
    await authenticate(request, Role.ADMIN)
    accounts = _accounts(request)
    user = await accounts.customer(request.path_params["user_id"])
    orders = await accounts.no_shows_of(str(user.id))
    return ok({"customer": await _customer_view(request, user), "noShows": [no_show_view(o) for o in orders]})


async def clear_no_show(request: Request) -> Response:
    """Clear a wrongly recorded no-show, with the admin's reason; the customer's trust follows."""
    admin = await authenticate(request, Role.ADMIN)
    body = await read_body(request, ClearNoShowRequest)
    accounts = _accounts(request)
    order = await accounts.clear_no_show(request.path_params["order_id"], admin, body.reason)
    user = await accounts.customer(order.user_id)
    return ok({"noShow": no_show_view(order), "customer": await _customer_view(request, user)},
              message=messages.NO_SHOW_CLEARED)


async def list_clients(request: Request) -> Response:
    await authenticate(request, Role.ADMIN)
    return ok([partner_client_view(client) for client in await partners.list_clients()])


async def create_client(request: Request) -> Response:
    await authenticate(request, Role.ADMIN)
    body = await read_body(request, AdminClientRequest)
    return ok(partner_client_view(await partners.create_client(body.name)), status_code=201)


async def revoke_client(request: Request) -> Response:
    """Revoke a partner client id: its next `/v1` request is refused, on every process."""
    await authenticate(request, Role.ADMIN)
    client_id = request.path_params["client_id"]
    client = await partners.revoke_client(client_id) if len(client_id) <= partners.MAX_CLIENT_ID_LENGTH else None
    if client is None:
        raise ApiError(404, messages.CLIENT_NOT_FOUND)
    return ok(partner_client_view(client), message=messages.CLIENT_REVOKED)


routes = [
    ApiRoute("/api/admin/users/{user_id}/role", change_role, "PUT", Operation(
        "Make a member of staff an admin or a store employee (admins)", {
            "200": success(ref("AdminUser")), **COMMON, "404": refusal("User or store not found"),
            "409": refusal("The last active admin")}, tag="admin", body=AdminRoleRequest)),
    ApiRoute("/api/admin/stores", list_all_stores, "GET", Operation(
        "Every store, closed ones too (admins)", {"200": success(array(ref("Store"))), **COMMON}, tag="admin")),
    ApiRoute("/api/admin/customers", list_customers, "GET", Operation(
        "Students and faculty with their trust standing (admins)", {"200": success(ref("CustomerPage")), **COMMON},
        tag="admin", params=(query_param("search", {"type": "string", "maxLength": MAX_SEARCH},
                                         "part of a name or email"), PAGE, LIMIT))),
    ApiRoute("/api/admin/customers/{user_id}/no-shows", customer_no_shows, "GET", Operation(
        "A customer's standing and recorded no-shows, cleared ones too (admins)", {
            "200": success(obj({"customer": ref("Customer"), "noShows": array(ref("NoShow"))})), **COMMON,
            "404": refusal("Customer not found")}, tag="admin")),
    ApiRoute("/api/admin/orders/{order_id}/clear-no-show", clear_no_show, "POST", Operation(
        "Clear a wrongly recorded no-show, with the reason; trust is recomputed (admins)", {
            "200": success(obj({"noShow": ref("NoShow"), "customer": ref("Customer")}), message=True), **COMMON,
            **ORDER_NOT_FOUND, "409": refusal("No no-show recorded on this order")},
        tag="admin", body=ClearNoShowRequest)),
    ApiRoute("/api/admin/clients", list_clients, "GET", Operation(
        "Partner clients of /v1 (admins)", {"200": success(array(ref("PartnerClient"))), **COMMON}, tag="admin")),
    ApiRoute("/api/admin/clients", create_client, "POST", Operation(
        "Register a partner client; its id is its X-Client-ID (admins)", {
            "201": success(ref("PartnerClient"), "Created"), **COMMON}, tag="admin", body=AdminClientRequest)),
    ApiRoute("/api/admin/clients/{client_id}/revoke", revoke_client, "POST", Operation(
        "Revoke a partner client id (admins)", {
            "200": success(ref("PartnerClient"), message=True), **COMMON,
            "404": refusal("Partner client not found")}, tag="admin")),
]
