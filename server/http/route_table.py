"""Every route of the API, in the order the app tries them: the app serves this table, and
`/openapi.json` is written from it (server/http/openapi.py)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from server.http import (
    account_routes, admin_routes, auth_routes, board_routes, campusbite_console, campusbite_notifications, ops_routes,
    order_routes, partner_routes, payment_qr, push_routes, report_routes, store_routes, streams, webhook_routes,
)

API_ROUTES: list[BaseRoute] = [
    *auth_routes.routes, *account_routes.routes, *admin_routes.routes, *webhook_routes.routes,
    *store_routes.routes, *order_routes.routes, *streams.routes,
    *campusbite_console.routes, *campusbite_notifications.routes, *push_routes.routes,
    *board_routes.routes, *report_routes.routes,
    *partner_routes.routes, *payment_qr.routes, *ops_routes.routes,
]
