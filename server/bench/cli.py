"""`orderpulse-bench`: parse the command line, prepare a population, run scenarios, report."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any, Sequence

import httpx

from server.bench.api import Api, ApiError
from server.bench.cost import Processes
from server.bench.fixtures import build_population
from server.bench.loadgen import ClientUnavailable, choose_client
from server.bench.metrics import ServerProbe
from server.bench.plots import write_plots
from server.bench.progress import Progress
from server.bench.report import ScenarioResult, machine_facts, render_table, write_json
from server.bench.scenarios import Context, scenario_modules
from server.bench.target import TargetRefused, parse_targets

DEFAULT_URL = "http://127.0.0.1:8000"

# Scenario options: flag → (type, help). A scenario gets the ones named in its DEFAULTS.
OPTIONS: dict[str, tuple[Any, str]] = {
    "duration": (float, "seconds of load (poll, fanout, latency) or per phase (push-vs-poll)"),
    "orders": (int, "distinct orders (poll), orders kept fresh (push-vs-poll), deadlines (deadlines), "
                    "orders the sockets subscribe to (sockets), orders placed (checkout)"),
    "concurrency": (int, "connections polling at once (poll), orders placed at once (checkout)"),
    "processes": (int, "client processes, or wrk threads (0: pick for this machine)"),
    "client": (str, "HTTP load client: auto (wrk when installed), wrk, or python (the bench's own)"),
    "warmup": (float, "seconds of load before measuring"),
    "max_requests": (int, "stop polling after this many requests in all"),
    "pipeline": (int, "requests wrk writes at once on each connection (poll; 1: none). Pipelining "
                      "cuts the load generator's CPU per request, which shares the server's cores"),
    "slices": (int, "alternating pairs of short runs the server and its floor are measured in (poll; "
                    "1: one run of each, the server's first)"),
    "sockets": (int, "sockets to open"),
    "hold": (float, "seconds to hold the sockets open"),
    "connect_parallel": (int, "handshakes in flight per client process"),
    "client_nice": (int, "CPU priority (nice) of the subscriber processes: above 0 lets the server under "
                         "test (and the floor and peer it is compared with) have the cores first, as with "
                         "clients on other machines (fanout: 10; latency: 0, since its receipt times are "
                         "the clients')"),
    "subscribers": (int, "store subscribers"),
    "rate": (float, "changes per second"),
    "settle": (float, "seconds to wait for the last events after the last change"),
    "poll_interval": (float, "seconds between polls of one order"),
    "max_wait": (float, "longest wait for the deadlines, in seconds"),
    "create_concurrency": (int, "orders placed at once in the burst"),
    "grace": (float, "seconds to wait after the last deadline"),
    "lead": (float, "seconds from setting the store's closing time to the closing itself (deadlines)"),
    "burst_orders": (int, "orders placed in a concurrent checkout burst while the deadlines fall (0: none)"),
    "cooks": (int, "cooks preparing orders at once in the simulated kitchen (eta)"),
    "seed": (int, "random seed of the simulated lunch rushes (eta)"),
}


def _add_common(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("target")
    target.add_argument("--url", default=None, help=f"server under test (default {DEFAULT_URL})")
    target.add_argument("--urls", default=None,
                        help="A,B: two processes sharing Redis; changes go to A, subscribers to B")
    target.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback host (only for a server you may load)")
    target.add_argument("--server-pid", type=int, default=None,
                        help="pid of the server under test: CPU and memory from /proc (same host)")
    target.add_argument("--db-pid", type=int, default=None,
                        help="pid of its database (default: the server's nx-27017 child, or the "
                             "nx-27017/mongod it is connected to)")
    who = parser.add_argument_group("identities")
    who.add_argument("--admin-email", default="admin@orderpulse.demo")
    who.add_argument("--admin-password", default="admin-demo-1")
    who.add_argument("--customers", type=int, default=16, help="customers to register (default 16)")
    who.add_argument("--customer-emails", default="", help="reuse these customers (comma-separated)")
    who.add_argument("--customer-password", default=None, help="password of --customer-emails")
    who.add_argument("--store-id", default=None, help="reuse this store instead of creating one per scenario")
    who.add_argument("--staff-email", action="append", default=[], help="staff of --store-id (repeatable)")
    who.add_argument("--staff-password", default=None, help="password of --staff-email")
    out = parser.add_argument_group("output")
    out.add_argument("--json", type=Path, default=None, metavar="FILE", help="write results as JSON")
    out.add_argument("--plot", type=Path, default=None, metavar="DIR", help="write PNG charts")
    out.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.add_argument("--ws-compression", action="store_true",
                        help="offer permessage-deflate on sockets (browsers do; default off)")
    parser.add_argument("--time-limit", type=float, default=3600.0,
                        help="stop the whole run after this many seconds (default 3600)")


def _add_options(parser: argparse.ArgumentParser, names: Sequence[str], defaults: dict[str, Any]) -> None:
    group = parser.add_argument_group("scenario")
    for name in names:
        kind, text = OPTIONS[name]
        shown = f" (default {defaults[name]})" if name in defaults else ""
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=None, help=text + shown)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderpulse-bench",
        description="Benchmark an OrderPulse server. Loads only the URLs given, loopback unless "
                    "--allow-remote. For poll throughput run the server with POLL_MIN_INTERVAL_SECONDS=0; "
                    "for deadlines with an UNPAID_ORDER_TIMEOUT_MINUTES longer than placing the orders takes (e.g. 120).")
    commands = parser.add_subparsers(dest="scenario", required=True, metavar="SCENARIO")
    for module in scenario_modules():
        sub = commands.add_parser(module.NAME, help=module.HELP, description=module.__doc__)
        _add_common(sub)
        _add_options(sub, list(module.DEFAULTS), module.DEFAULTS)
    every = commands.add_parser("all", help="every scenario in turn, sharing one set of customers",
                                description="Every scenario in turn; a flag applies to each scenario using it.")
    _add_common(every)
    every.add_argument("--only", default="", help="run only these scenarios (comma-separated names)")
    every.add_argument("--set", action="append", default=[], metavar="SCENARIO.OPTION=VALUE",
                       help="one scenario's option, over the flag of the same name (repeatable), "
                            "e.g. --set poll.orders=500")
    _add_options(every, list(OPTIONS), {})
    return parser


async def run(args: argparse.Namespace, progress: Progress) -> tuple[list[ScenarioResult], list[str], int]:
    targets = parse_targets(args.urls or args.url or DEFAULT_URL, args.allow_remote)
    only = _only(args)
    modules = [m for m in scenario_modules()
               if args.scenario == m.NAME or (args.scenario == "all" and (not only or m.NAME in only))]
    apis = [Api(t.base_url) for t in targets]
    results: list[ScenarioResult] = []
    failed = 0
    if all(not getattr(module, "NEEDS_SERVER", True) for module in modules):
        # Simulations only (eta): no server to reach, no customers to make.
        for api in apis:
            await api.aclose()
        for module in modules:
            progress.begin(module.NAME)
            ctx = Context(targets, [], None, None, progress, args, module.DEFAULTS,  # type: ignore[arg-type]
                          args.overrides.get(module.NAME, {}))
            results.append(await module.run(ctx))
        progress.finish()
        return results, [t.base_url for t in targets], failed
    try:
        staff = [(e, args.staff_password or "") for e in args.staff_email]
        if args.store_id and not staff:
            raise SystemExit("--store-id needs --staff-email and --staff-password (store staff make the changes).")
        population = await build_population(
            apis[0], admin_email=args.admin_email, admin_password=args.admin_password,
            customers=max(1, args.customers),
            customer_emails=[e for e in args.customer_emails.split(",") if e],
            customer_password=args.customer_password, store_id=args.store_id, staff=staff,
            progress=progress)
        probe = ServerProbe(apis[0], args.server_pid)
        processes = Processes.find(targets, args.server_pid, args.db_pid)
        for module in modules:
            progress.begin(module.NAME)
            await population.refresh_tokens()
            ctx = Context(targets, apis, population, probe, progress, args, module.DEFAULTS,
                          args.overrides.get(module.NAME, {}), processes)
            conflicts = population.setup_conflicts
            try:
                results.append(await module.run(ctx))
                if population.setup_conflicts > conflicts:
                    results[-1].notes.append(
                        f"{population.setup_conflicts - conflicts} uncontended payment confirmations during "
                        "setup answered 409 and were retried.")
            except Exception as error:  # noqa: BLE001 - one failed scenario must not lose the others
                failed += 1
                failure = ScenarioResult(module.NAME, {}, at_target_size=False)
                failure.add("error", "FAILED", f"{type(error).__name__}: {error}")
                results.append(failure)
                progress.note(f"failed: {type(error).__name__}: {error}")
    finally:
        for api in apis:
            await api.aclose()
        progress.finish()
    return results, [t.base_url for t in targets], failed


def parse_overrides(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    """`--set poll.orders=500` → {"poll": {"orders": 500}}, each option one its scenario has."""
    modules = {m.NAME: m for m in scenario_modules()}
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, equals, raw = item.partition("=")
        scenario, dot, option = key.partition(".")
        option = option.replace("-", "_")
        if not equals or not dot or scenario not in modules or option not in modules[scenario].DEFAULTS:
            raise ValueError(f"--set {item!r}: give SCENARIO.OPTION=VALUE with an option that scenario has "
                             "(see orderpulse-bench SCENARIO --help)")
        kind = OPTIONS[option][0]
        try:
            out.setdefault(scenario, {})[option] = kind(raw)
        except ValueError:
            raise ValueError(f"--set {item!r}: {raw!r} is not a {kind.__name__}") from None
    return out


def _only(args: argparse.Namespace) -> set[str]:
    return {n.strip() for n in getattr(args, "only", "").split(",") if n.strip()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    unknown = _only(args) - {m.NAME for m in scenario_modules()}
    if unknown:
        parser.error(f"unknown scenario(s) in --only: {', '.join(sorted(unknown))}")
    try:
        args.overrides = parse_overrides(getattr(args, "set", []))
    except ValueError as error:
        parser.error(str(error))
    try:
        choose_client(getattr(args, "client", None) or "auto")
    except ClientUnavailable as error:
        print(f"orderpulse-bench: {error}", file=sys.stderr)
        return 2
    progress = Progress(enabled=not args.quiet)
    load_at_start = os.getloadavg()
    try:
        results, urls, failed = asyncio.run(asyncio.wait_for(run(args, progress), args.time_limit))
    except TargetRefused as error:
        print(f"orderpulse-bench: {error}", file=sys.stderr)
        return 2
    except TimeoutError:
        print(f"orderpulse-bench: stopped after --time-limit {args.time_limit:g} s", file=sys.stderr)
        return 1
    except ApiError as error:
        print(f"orderpulse-bench: setting up the run failed: {error}", file=sys.stderr)
        return 1
    except httpx.TransportError as error:
        print(f"orderpulse-bench: cannot reach the server: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    render_table(results, sys.stdout)
    if args.json:
        write_json(args.json, results, urls, list(argv if argv is not None else sys.argv[1:]),
                   machine_facts(load_at_start))
        print(f"JSON written to {args.json}", file=sys.stderr)
    if args.plot:
        for path in write_plots(args.plot, results):
            print(f"chart written to {path}", file=sys.stderr)
    return 1 if failed else 0
