"""`orderpulse`: serve, demo (optionally with simulated customers), create-user, client create/revoke."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import logging
import secrets
import socket
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from server.config import LOG_LEVELS, ConfigurationError, Settings, resolve_jwt_secret, resolve_secrets
from server.domain.access import Role

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import Receive, Scope, Send

    from server.app import OrderPulseApp
    from server.runtime import Runtime
    from server.services.tokens import Passwords

T = TypeVar("T")

SHUTDOWN_GRACE_SECONDS = 3  # plus the runtime's own bounded stop: SIGTERM ends well within 10 s
# How long the drain's reconnect frames and close frames may take to be written, before uvicorn's
# own shutdown (and its grace) begins: each socket waits its spread delay on the client's side,
# so the process need not outlive WS_DRAIN_SECONDS.
DRAIN_WRITE_SECONDS = 2.0

DEMO_PASSWORDS = {
    Role.ADMIN: ("Demo Admin", "admin@orderpulse.demo", "admin-demo-1"),
    Role.STORE_EMPLOYEE: ("Kavya Staff", "staff@orderpulse.demo", "staff-demo-1"),
    Role.STUDENT: ("Asha Rao", "asha@orderpulse.demo", "student-demo-1"),
    Role.FACULTY: ("Ravi Menon", "ravi@orderpulse.demo", "faculty-demo-1"),
}
DEMO_MENU = [("Paneer Burger", 120, "Burgers"), ("French Fries", 80, "Sides"),
             ("Cold Coffee", 49.5, "Drinks"), ("Masala Dosa", 60, "South Indian"),
             ("Veg Sandwich", 45, "Snacks"), ("Lemon Soda", 30, "Drinks")]


def bind_listener(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else starts so that a taken port is reported
    before the database starts or any demo data is written."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror:
        raise ConfigurationError(f"HOST {host!r} is neither an address nor a name this machine can resolve; "
                                 "set HOST to an address such as 127.0.0.1.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)  # uvicorn's default backlog
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise ConfigurationError(f"port {port} on {host} is already in use; set PORT to a free port.") from None
        if exc.errno == errno.EACCES:
            raise ConfigurationError(f"port {port} needs privileges this user does not have; "
                                     "set PORT to 1024 or above.") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise ConfigurationError(f"HOST {host} is not an address of this machine; "
                                     "set HOST to one of its addresses, such as 127.0.0.1 or 0.0.0.0.") from None
        raise ConfigurationError(f"cannot listen on {host}:{port} ({exc.strerror}); check HOST and PORT.") from None
    return sock


class StartedLifespan:
    """The app, whose lifespan the command line enters before serving: uvicorn's lifespan start-up
    is then a no-op, and its shutdown (inside uvicorn's signal handling) exits it."""

    def __init__(self, app: OrderPulseApp) -> None:
        self.app = app
        self._context = app.router.lifespan_context(app)
        self._open = False
        # Run before the runtime stops (the demo's simulation), whichever of uvicorn or `serve` exits it.
        self.before_exit: list[Callable[[], Awaitable[None]]] = []

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine function: handing back the app's coroutine adds no frame per request or socket.
        if scope["type"] == "lifespan":
            return self._lifespan(receive, send)
        return self.app(scope, receive, send)

    async def enter(self) -> None:
        await self._context.__aenter__()
        self._open = True

    async def exit(self) -> None:
        if self._open:
            self._open = False
            for stop in self.before_exit:
                await stop()
            await self._context.__aexit__(None, None, None)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "lifespan.startup.complete"})
        await receive()
        await self.exit()
        await send({"type": "lifespan.shutdown.complete"})


def draining_server(config: uvicorn.Config, app: StartedLifespan) -> uvicorn.Server:
    """A uvicorn Server whose shutdown first stops accepting, then tells every socket and event
    stream to come back after its own spread delay (Hub.drain), then does uvicorn's shutdown."""
    import uvicorn

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:
                server.close()  # no new connection lands here while the old ones are told to leave
            runtime = app.app.runtime
            if app._open:
                try:
                    await asyncio.wait_for(runtime.hub.drain(runtime.settings.ws_drain_seconds), DRAIN_WRITE_SECONDS)
                except TimeoutError:
                    logging.getLogger("orderpulse").warning("shutdown: the drain took over %.0f s; closing the rest",
                                                            DRAIN_WRITE_SECONDS)
            await super().shutdown(sockets)

    return DrainingServer(config)


def freeze_startup_objects() -> None:
    """Move what startup made (modules, models, schemas, routes, clients: about 100,000 objects)
    out of the cyclic garbage collector's sight. They live as long as the process, and a full
    collection walked every one of them: 63 ms with the event loop held, three times in a poll
    bench's 12 s (README, *Garbage collection pauses*). Garbage already made is collected first."""
    gc.collect()
    gc.freeze()


def serve(settings: Settings, *, demo: bool = False, simulate: argparse.Namespace | None = None,
          workers: int = 1, worker_fd: int | None = None, worker_index: int | None = None,
          worker_args: list[str] | None = None) -> int:
    """`serve` and `demo`: bind the port, start the runtime, seed the demo through it, serve;
    `simulate` (demo only) also runs simulated customers until the server stops. With `workers`
    above 1 this process supervises that many workers (server/workers.py); a worker is given the
    supervisor's listening socket as `worker_fd`."""
    import uvicorn

    if worker_fd is None:
        sock = bind_listener(settings.host, settings.port)
    else:
        sock = socket.socket(fileno=worker_fd)
    if workers > 1 and worker_fd is None:
        try:
            return _supervise(settings, sock, workers, demo, worker_args or [])
        finally:
            sock.close()

    from server.app import create_app
    from server.http.security_headers import API_HEADERS
    from server.uvicorn_adapter import server_protocols

    worker = worker_index is not None
    try:
        # Printed once the server is up: before that, the one line said is the error, if any.
        settings, notices = resolve_secrets(settings)
        app = StartedLifespan(create_app(settings))
        protocols = server_protocols(settings, API_HEADERS, app.app.inline_answer)
        config = uvicorn.Config(
            app, interface="asgi3", lifespan="on", log_level=settings.log_level, http=protocols.http,
            ws=protocols.ws, ws_max_size=settings.ws_max_frame_bytes,
            ws_ping_interval=settings.ws_ping_interval_seconds, ws_ping_timeout=settings.ws_ping_timeout_seconds,
            # Frames are small JSON; per-message deflate would cost a zlib context per socket and a
            # compression per socket per event, which is most of the cost of a fan-out.
            ws_per_message_deflate=False,
            # Longer than the 5-second interval legacy pollers use, so they keep their connection.
            timeout_keep_alive=settings.http_keep_alive_seconds,
            # An event stream never ends by itself: without a bound, one open stream held SIGTERM
            # for good. Streams still open after this are cancelled; the runtime then stops.
            timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
            proxy_headers=True, access_log=False,
        )
        server = draining_server(config, app)

        async def run() -> None:
            await app.enter()  # database and broker: a ConfigurationError ends here, before serving
            try:
                if demo:
                    lines = await _seed_demo(app.app.runtime.accounts.passwords)
                    if not worker:  # the supervisor seeded and printed them once
                        print("\n".join(lines))
                    # Nobody reads a demo's mail: its reset and verification links go to the console.
                    app.app.runtime.mailer.echo = lambda to, link: print(f"Mail to {to}: {link}", flush=True)
                if demo and simulate is not None and not worker_index:
                    app.before_exit.append((await _start_simulation(app.app.runtime, simulate)).stop)
                if not worker:
                    for notice in notices:
                        print(notice, file=sys.stderr)
                    hint = "  (kitchen: /kitchen, sign in: /login)" if demo else ""
                    print(f"Serving on http://{settings.host}:{settings.port}{hint}", flush=True)
                freeze_startup_objects()
                await server.serve(sockets=[sock])
            finally:
                await app.exit()  # already done by uvicorn's shutdown, unless serving never began

        try:
            with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
                runner.run(run())
        except KeyboardInterrupt:
            # uvicorn re-raises the Ctrl-C it shut down for: a clean stop once it had served.
            return 0 if server.started else 130
    finally:
        sock.close()
    return 0 if server.started else 1


def _supervise(settings: Settings, sock: socket.socket, workers: int, demo: bool, worker_args: list[str]) -> int:
    """The supervisor of `--workers N`: secrets made once (kept in DATA_DIR, where every worker
    reads them), the demo seeded once, then the workers (server/workers.py)."""
    from server.workers import supervise

    settings, notices = resolve_secrets(settings)
    for notice in notices:
        print(notice, file=sys.stderr)

    def seed(url: str | None) -> None:
        from server.config import resolve_password_cost
        from server.services.tokens import Passwords

        shared = settings.model_copy(update={"mongodb_url": url})
        passwords = Passwords(resolve_password_cost(settings))
        print("\n".join(asyncio.run(_with_database(shared, lambda: _seed_demo(passwords)))), flush=True)

    return supervise(settings, sock, workers, worker_args, before_workers=seed if demo else None)


async def _with_database(settings: Settings, work: Callable[[], Awaitable[T]]) -> T:
    from server.database import connect_database

    client, embedded = await connect_database(settings)
    try:
        return await work()
    finally:
        await client.close()
        if embedded is not None:
            embedded.stop()


async def _create_user(settings: Settings, args: argparse.Namespace) -> str:
    from server.domain.trust import TrustPolicy
    from server.domain.errors import OrderPulseError
    from server.services.accounts import AccountService
    from server.config import resolve_password_cost
    from server.services.tokens import Passwords, TokenService

    accounts = AccountService(TokenService(settings.jwt_secret or "", settings.jwt_algorithm,
                                           settings.access_token_lifetime),
                              settings.refresh_token_lifetime, TrustPolicy(2, 3, settings.restriction_length), 0,
                              passwords=Passwords(resolve_password_cost(settings)))
    try:
        user = await accounts.create_user(name=args.name, email=args.email, password=args.password,
                                          role=args.role, store_id=args.store)
    except OrderPulseError as exc:
        raise SystemExit(f"error: {exc.message}") from None
    return str(user.id)


async def _seed_demo(passwords: Passwords) -> list[str]:
    """Idempotent: a second `orderpulse demo` reuses what the first created. `passwords` is the
    running server's, so the demo accounts are hashed at its cost."""
    from server.domain.clock import utcnow
    from server.domain.money import rupees_to_paise
    from server.models import MenuItem, Store, User

    store = await Store.find_one({"name": "Campus Cafe"})
    if store is None:
        store = await Store(name="Campus Cafe", location="Building A, Ground Floor",
                            upi_id="campuscafe@upi", created_at=utcnow()).insert()
        now = utcnow()
        for name, price, category in DEMO_MENU:
            await MenuItem(store_id=str(store.id), name=name, price_paise=rupees_to_paise(price), category=category,
                           created_at=now, updated_at=now).insert()
    lines = [f"Demo store: {store.name} ({store.id})"]
    for role, (name, email, password) in DEMO_PASSWORDS.items():
        if await User.find_one({"email": email}) is None:
            await User(name=name, email=email, password_hash=passwords.hash(password), role=role,
                       store_id=str(store.id) if role == Role.STORE_EMPLOYEE else None,
                       register_number="21CS1001" if role == Role.STUDENT else None,
                       employee_id="FAC-042" if role == Role.FACULTY else None, created_at=utcnow(),
                       email_verified_at=utcnow()).insert()  # the demo's addresses receive nothing
        lines.append(f"  {role:<15} {email:<26} {password}")
    return lines


async def _client_create(name: str) -> str:
    from server.services import partners

    return (await partners.create_client(name)).client_id


async def _client_revoke(client_id: str) -> bool:
    from server.services import partners

    return await partners.revoke_client(client_id) is not None


async def _webhook(settings: Settings, args: argparse.Namespace) -> list[str]:
    """`orderpulse webhook …`: the lines to print (a secret only from add and rotate, once)."""
    import orjson

    from server.domain import messages
    from server.domain.clock import parse_iso, utcnow
    from server.domain.errors import Invalid
    from server.services import webhooks
    from server.views import webhook_delivery_view, webhook_endpoint_view

    def as_json(value: Any) -> str:
        return orjson.dumps(value).decode()

    now = utcnow()
    command = args.webhook_command
    if command == "add":
        endpoint, secret = await webhooks.add_endpoint(settings, args.client, args.url, args.events, now)
        return [endpoint.endpoint_id, secret]
    if command == "list":
        return [as_json(webhook_endpoint_view(endpoint, await webhooks.delivery_counts(endpoint.endpoint_id)))
                for endpoint in await webhooks.list_endpoints(args.client)]
    if command == "remove":
        await webhooks.remove_endpoint(args.endpoint_id)
        return [f"removed {args.endpoint_id}"]
    if command == "rotate":
        grace = timedelta(hours=settings.webhook_rotation_grace_hours)
        _, secret = await webhooks.rotate_secret(args.endpoint_id, grace, now)
        return [secret]
    if command == "enable":
        await webhooks.enable_endpoint(args.endpoint_id)
        return [f"enabled {args.endpoint_id}"]
    if command == "deliveries":
        return [as_json(webhook_delivery_view(delivery))
                for delivery in await webhooks.deliveries(args.endpoint_id, limit=args.limit, order_id=args.order)]
    try:
        since = parse_iso(args.since) if args.since else None
        until = parse_iso(args.until) if args.until else None
    except ValueError:
        raise Invalid(messages.WEBHOOK_TIME_INVALID.format(field="--since and --until")) from None
    count = await webhooks.replay(args.endpoint_id, now, event=args.event, order_id=args.order,
                                  since=since, until=until)
    return [f"{count} deliveries scheduled again"]


SIMULATED_CUSTOMERS = ["Aarav", "Diya", "Kabir", "Ishita", "Rohan", "Sneha", "Vikram", "Ananya", "Farhan", "Lakshmi"]


class RunningSimulation:
    """The simulation's task and the event that stops it."""

    def __init__(self, task: asyncio.Task[None], stop_event: asyncio.Event) -> None:
        self._task, self._stop = task, stop_event

    async def stop(self) -> None:
        self._stop.set()
        try:
            await asyncio.wait_for(self._task, SHUTDOWN_GRACE_SECONDS)
        except Exception:  # the server stops either way
            logging.getLogger("orderpulse.simulation").exception("the simulation did not stop cleanly")


async def _start_simulation(runtime: Runtime, options: argparse.Namespace) -> RunningSimulation:
    """Simulated customers of the demo store (made once, never able to sign in), ordering in the background."""
    from server.domain.access import Principal
    from server.domain.clock import utcnow
    from server.models import Store, User
    from server.services import catalog
    from server.services.simulation import Simulation

    store = await Store.find_one({"name": "Campus Cafe"})
    assert store is not None  # seeded just before
    unusable = None
    customers = []
    for number, name in enumerate(SIMULATED_CUSTOMERS, start=1):
        email = f"sim{number:02d}@orderpulse.demo"
        user = await User.find_one({"email": email})
        if user is None:
            unusable = unusable or runtime.accounts.passwords.hash(secrets.token_urlsafe(24))
            user = await User(name=f"{name} (simulated)", email=email, password_hash=unusable, role=Role.STUDENT,
                              register_number=f"SIM{number:04d}", created_at=utcnow()).insert()
        customers.append(Principal(str(user.id), user.role, None, user.name, expires_at=float("inf")))

    async def menu() -> list[str]:
        current = await catalog.find_store(str(store.id))
        return [str(item.id) for item in await catalog.menu_of(current, include_unavailable=False)]

    simulation = Simulation(str(store.id), customers, runtime.checkout, runtime.lifecycle, runtime.orders, menu,
                            runtime.clock, speed=options.speed, no_show_rate=options.no_show_rate,
                            say=lambda line: print(line, flush=True))
    stop_event = asyncio.Event()
    task = asyncio.create_task(simulation.run(stop_event), name="demo-simulation")
    day = simulation.profile.closes_at_hour - simulation.profile.opens_at_hour
    print(f"Simulating customers of {store.name}: a {day:g}-hour lunch service every "
          f"{simulation.real_seconds(day) / 60:.1f} min, {options.no_show_rate:.0%} never pick up; "
          "work the orders on /kitchen", flush=True)
    return RunningSimulation(task, stop_event)


def _number_between(minimum: float, maximum: float) -> Callable[[str], float]:
    """An argparse type: a number in [minimum, maximum], refused in one line otherwise."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"must be a number from {minimum:g} to {maximum:g} (got {text!r})")
        return value
    return parse


def _whole_number_between(minimum: int, maximum: int) -> Callable[[str], int]:
    """An argparse type: a whole number in [minimum, maximum], refused in one line otherwise."""
    def parse(text: str) -> int:
        if not text.strip().isdigit() or not minimum <= int(text) <= maximum:
            raise argparse.ArgumentTypeError(f"must be a whole number from {minimum} to {maximum} (got {text!r})")
        return int(text)
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="orderpulse", description="Real-time order tracking server.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_command = commands.add_parser("serve", help="serve the API, sockets and pages")
    demo = commands.add_parser("demo", help="create a demo store, menu and users, print their credentials, then serve")
    for command in (serve_command, demo):
        command.add_argument("--workers", type=_whole_number_between(1, 64), default=1,
                             help="worker processes on one port under one supervisor that restarts a dead one "
                                  "(default 1: this process serves); above 1 without REDIS_URL a local "
                                  "redis-server is started to share events between them")
        # Given by the supervisor to its workers: the inherited listening socket, and which worker.
        command.add_argument("--worker-fd", type=int, help=argparse.SUPPRESS)
        command.add_argument("--worker-index", type=int, help=argparse.SUPPRESS)
    demo.add_argument("--simulate", action="store_true",
                      help="simulated customers order at a lunch-rush pace (the kitchen is yours to run)")
    demo.add_argument("--speed", type=_number_between(1, 3600), default=4.0,
                      help="with --simulate: simulated seconds per real second (default 4: starting at 12:00, "
                           "the 12:30 peak comes about 7 minutes in)")
    demo.add_argument("--no-show-rate", type=_number_between(0, 1), default=0.15,
                      help="with --simulate: the share of customers who never pick up (default 0.15)")
    user = commands.add_parser("create-user", help="create an admin or a store employee; prints the id")
    user.add_argument("--role", required=True, choices=[Role.ADMIN.value, Role.STORE_EMPLOYEE.value])
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
    webhook = commands.add_parser("webhook", help="partner webhook endpoints and their deliveries")
    webhook_commands = webhook.add_subparsers(dest="webhook_command", required=True)
    add = webhook_commands.add_parser("add", help="register an endpoint; prints its id and signing secret (once)")
    add.add_argument("--client", required=True, help="the partner client id whose orders' events it receives")
    add.add_argument("--url", required=True)
    add.add_argument("--events", help="comma-separated: order.completed, order.failed, order.expired, "
                                      "order.updated (default: all)")
    listing = webhook_commands.add_parser("list", help="endpoints, one JSON object a line (no secrets)")
    listing.add_argument("--client")
    for name, text in (("remove", "delete an endpoint and its delivery log"),
                       ("rotate", "a new signing secret (printed once); the old one signs too for "
                                  "WEBHOOK_ROTATION_GRACE_HOURS"),
                       ("enable", "re-enable a disabled endpoint: its pending deliveries go out")):
        webhook_commands.add_parser(name, help=text).add_argument("endpoint_id")
    log = webhook_commands.add_parser("deliveries", help="an endpoint's delivery log, newest first, one JSON object a line")
    log.add_argument("endpoint_id")
    log.add_argument("--order")
    log.add_argument("--limit", type=int, default=50, choices=range(1, 501), metavar="1-500")
    replay = webhook_commands.add_parser("replay", help="send finished deliveries again, same webhook-id")
    replay.add_argument("endpoint_id")
    scope = replay.add_mutually_exclusive_group(required=True)
    scope.add_argument("--event", help="one event id (msg_…)")
    scope.add_argument("--order", help="every event of one order")
    scope.add_argument("--since", help="events since this ISO 8601 time (with --until, up to it)")
    replay.add_argument("--until")
    return parser


# Settings whose value is never repeated back, even when it is invalid (it may hold a password).
_UNECHOED = ("secret", "password", "url")
_NUMBER_ERRORS = {"int_parsing", "int_from_float", "int_type", "float_parsing", "float_type", "finite_number",
                  "greater_than", "greater_than_equal", "less_than", "less_than_equal"}


def _expected_number(name: str) -> str | None:
    """'a whole number from 1 to 65535' for a numeric setting, from its type and bounds."""
    field = Settings.model_fields.get(name)
    if field is None or field.annotation not in (int, float):
        return None
    kind = "a whole number" if field.annotation is int else "a number"
    bounds = {key: getattr(item, key) for item in field.metadata for key in ("ge", "gt", "le", "lt")
              if getattr(item, key, None) is not None}
    if "ge" in bounds and "le" in bounds:
        return f"{kind} from {bounds['ge']} to {bounds['le']}"
    words = {"ge": "of at least", "gt": "greater than", "le": "of at most", "lt": "less than"}
    phrases = [f"{words[key]} {value}" for key, value in bounds.items()]
    return f"{kind} {' and '.join(phrases)}" if phrases else kind


def settings_problems(exc: ValidationError) -> list[str]:
    """One line per invalid setting, naming its environment variable and what it must be."""
    lines = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        variable = name.upper()
        expected = _expected_number(name) if error["type"] in _NUMBER_ERRORS else None
        if expected:
            line = f"{variable} must be {expected}"
        elif error["type"] == "value_error":
            line = f"{variable}: {error['ctx']['error']}"
        elif error["msg"].startswith("Input should be "):
            line = f"{variable} must be {error['msg'].removeprefix('Input should be ')}"
        else:
            line = f"{variable}: {error['msg']}"
        if error["type"] != "value_error" and not any(word in name for word in _UNECHOED):
            line += f" (got {error.get('input')!r})"
        lines.append(line + ".")
    return lines


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for line in settings_problems(exc):
            print(f"error: {line}", file=sys.stderr)
        return 2
    logging.basicConfig(level=LOG_LEVELS[settings.log_level], format="%(levelname)s %(name)s: %(message)s")
    try:
        return _run(args, settings)
    except ConfigurationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "demo" and settings.orderpulse_env == "production":
        # Its accounts have the passwords printed in the README and on its console.
        raise ConfigurationError("`orderpulse demo` creates accounts with published passwords and does not run "
                                 "with ORDERPULSE_ENV=production; use `orderpulse serve` and `orderpulse create-user`.")
    if args.command in ("serve", "demo"):
        simulate = args if args.command == "demo" and args.simulate else None
        # What each worker of a supervisor runs: the same command and demo options.
        worker_args = [args.command]
        if simulate is not None:
            worker_args += ["--simulate", "--speed", str(args.speed), "--no-show-rate", str(args.no_show_rate)]
        return serve(settings, demo=args.command == "demo", simulate=simulate, workers=args.workers,
                     worker_fd=args.worker_fd, worker_index=args.worker_index, worker_args=worker_args)
    settings, _ = resolve_jwt_secret(settings)
    if args.command == "create-user":
        print(asyncio.run(_with_database(settings, lambda: _create_user(settings, args))))
    elif args.command == "client" and args.client_command == "create":
        print(asyncio.run(_with_database(settings, lambda: _client_create(args.name))))
    elif args.command == "client" and args.client_command == "revoke":
        if not asyncio.run(_with_database(settings, lambda: _client_revoke(args.client_id))):
            print(f"error: no client {args.client_id}", file=sys.stderr)
            return 1
        print(f"revoked {args.client_id}")
    elif args.command == "webhook":
        from server.domain.errors import OrderPulseError

        try:
            for line in asyncio.run(_with_database(settings, lambda: _webhook(settings, args))):
                print(line)  # no endpoints or deliveries print nothing, not an empty line
        except OrderPulseError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 1
    return 0
