"""`orderpulse`: serve, demo, create-user, client create/revoke."""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys

from server.config import ConfigurationError, Settings, resolve_jwt_secret

DEMO_PASSWORDS = {
    "admin": ("Demo Admin", "admin@orderpulse.demo", "admin-demo-1"),
    "staff": ("Kavya Staff", "staff@orderpulse.demo", "staff-demo-1"),
    "student": ("Asha Rao", "asha@orderpulse.demo", "student-demo-1"),
    "faculty": ("Ravi Menon", "ravi@orderpulse.demo", "faculty-demo-1"),
}
DEMO_MENU = [("Paneer Burger", 120, "Burgers"), ("French Fries", 80, "Sides"),
             ("Cold Coffee", 49.5, "Drinks"), ("Masala Dosa", 60, "South Indian"),
             ("Veg Sandwich", 45, "Snacks"), ("Lemon Soda", 30, "Drinks")]


def serve(settings: Settings) -> None:
    import uvicorn

    from server.app import create_app
    from server.realtime.wsprotocol import LeanWebSocketProtocol

    app = create_app(settings)
    uvicorn.run(
        app, host=settings.host, port=settings.port, log_level=settings.log_level,
        ws=LeanWebSocketProtocol, ws_max_size=settings.ws_max_frame_bytes,
        ws_ping_interval=settings.ws_ping_interval_seconds, ws_ping_timeout=settings.ws_ping_timeout_seconds,
        # Frames are small JSON; per-message deflate would cost a zlib context per socket and a
        # compression per socket per event, which is most of the cost of a fan-out.
        ws_per_message_deflate=False,
        # Longer than the 5-second interval legacy pollers use, so they keep their connection.
        timeout_keep_alive=settings.http_keep_alive_seconds,
        proxy_headers=True, lifespan="on", access_log=False,
    )


async def _with_database(settings: Settings, work):
    from server.runtime import connect_database

    client, embedded = await connect_database(settings)
    try:
        return await work()
    finally:
        await client.close()
        if embedded is not None:
            embedded.stop()


async def _create_user(settings: Settings, args) -> str:
    from server.domain.trust import TrustPolicy
    from server.errors import ApiError
    from server.services.accounts import AccountService
    from server.services.tokens import TokenService

    accounts = AccountService(TokenService(settings.jwt_secret or "", settings.jwt_algorithm,
                                           settings.access_token_lifetime),
                              settings.refresh_token_lifetime, TrustPolicy(2, 3, settings.restriction_length), 0)
    try:
        user = await accounts.create_user(name=args.name, email=args.email, password=args.password,
                                          role=args.role, store_id=args.store)
    except ApiError as exc:
        raise SystemExit(f"error: {exc.message}") from None
    return str(user.id)


async def _seed_demo(settings: Settings) -> list[str]:
    """Idempotent: a second `orderpulse demo` reuses what the first created."""
    from server.domain.clock import utcnow
    from server.domain.money import rupees_to_paise
    from server.models import MenuItem, Store, User
    from server.services.tokens import hash_password

    store = await Store.find_one({"name": "Campus Cafe"})
    if store is None:
        store = await Store(name="Campus Cafe", location="Building A, Ground Floor",
                            upi_id="campuscafe@upi", created_at=utcnow()).insert()
        now = utcnow()
        for name, price, category in DEMO_MENU:
            await MenuItem(store_id=str(store.id), name=name, price_paise=rupees_to_paise(price), category=category,
                           created_at=now, updated_at=now).insert()
    roles = {"admin": "admin", "staff": "store_employee", "student": "student", "faculty": "faculty"}
    lines = [f"Demo store: {store.name} ({store.id})"]
    for key, (name, email, password) in DEMO_PASSWORDS.items():
        if await User.find_one({"email": email}) is None:
            await User(name=name, email=email, password_hash=hash_password(password), role=roles[key],
                       store_id=str(store.id) if key == "staff" else None,
                       register_number="21CS1001" if key == "student" else None,
                       employee_id="FAC-042" if key == "faculty" else None, created_at=utcnow()).insert()
        lines.append(f"  {roles[key]:<15} {email:<26} {password}")
    return lines


async def _client_create(name: str) -> str:
    from server.domain.clock import utcnow
    from server.models import ClientApp

    client = ClientApp(client_id="opc_" + secrets.token_urlsafe(18), name=name, created_at=utcnow())
    await client.insert()
    return client.client_id


async def _client_revoke(client_id: str) -> bool:
    from server.domain.clock import utcnow
    from server.models import ClientApp

    result = await ClientApp.get_pymongo_collection().update_one(
        {"client_id": client_id}, {"$set": {"is_active": False, "revoked_at": utcnow()}})
    return result.matched_count == 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderpulse", description="Real-time order tracking server.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the API, sockets and pages")
    commands.add_parser("demo", help="create a demo store, menu and users, print their credentials, then serve")
    user = commands.add_parser("create-user", help="create an admin or a store employee; prints the id")
    user.add_argument("--role", required=True, choices=["admin", "store_employee"])
    user.add_argument("--email", required=True)
    user.add_argument("--password", required=True)
    user.add_argument("--name", required=True)
    user.add_argument("--store", help="store id (store employees)")
    client = commands.add_parser("client", help="partner API clients (/v1)")
    client_commands = client.add_subparsers(dest="client_command", required=True)
    create = client_commands.add_parser("create", help="register a partner; prints its client id")
    create.add_argument("--name", required=True)
    revoke = client_commands.add_parser("revoke", help="deactivate a partner client id")
    revoke.add_argument("client_id")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        notice = resolve_jwt_secret(settings)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if notice and args.command in ("serve", "demo"):
        print(notice, file=sys.stderr)
    if args.command == "serve":
        serve(settings)
    elif args.command == "demo":
        lines = asyncio.run(_with_database(settings, lambda: _seed_demo(settings)))
        print("\n".join(lines))
        print(f"Serving on http://{settings.host}:{settings.port}  (kitchen: /kitchen, sign in: /login)")
        sys.stdout.flush()
        serve(settings)
    elif args.command == "create-user":
        print(asyncio.run(_with_database(settings, lambda: _create_user(settings, args))))
    elif args.command == "client" and args.client_command == "create":
        print(asyncio.run(_with_database(settings, lambda: _client_create(args.name))))
    elif args.command == "client" and args.client_command == "revoke":
        if not asyncio.run(_with_database(settings, lambda: _client_revoke(args.client_id))):
            print(f"error: no client {args.client_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.client_id}")
    return 0
